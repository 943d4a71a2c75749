using System.Net.Sockets;
using Berth.CriServer.Configuration;
using Berth.ImageStore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Berth.CriServer.Hosting;

/// <summary>
/// <c>berthd import</c>: loads images from an OCI image layout or a <c>docker save</c> archive into the image
/// store, for air-gapped nodes. It works on the store directly, so berthd must not be running on it.
/// </summary>
internal static class ImportCommand
{
    public static async Task<int> RunAsync(CommandLineOptions flags, string archive, string? name)
    {
        var config = ConfigLoader.Load(flags);
        StateDirectories.Prepare(config);
        RefuseWhileServing(config.Grpc.Socket);

        using var images = new ImageManager(ComponentOptions.ImageStore(config), NullLogger<ImageManager>.Instance);
        try
        {
            foreach (var image in await images.ImportAsync(Path.GetFullPath(archive), name, CancellationToken.None))
                Console.Out.WriteLine($"imported {string.Join(", ", image.RepoTags)} as {image.Id}");
            return 0;
        }
        catch (ImageStoreException e)
        {
            await Console.Error.WriteLineAsync($"berthd import: {e.Message}");
            return 1;
        }
    }

    private static void RefuseWhileServing(string socketPath)
    {
        if (!File.Exists(socketPath)) return;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException)
        {
            return;
        }
        throw new ConfigException($"import: berthd is serving on '{socketPath}'; stop it first, since the running daemon would not see the import");
    }
}
