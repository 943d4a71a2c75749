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
    public const string Usage = """
        Usage: berthd import [--config <path>] [--root <dir>] [--socket <path>] [--name <image>] <archive>

        Imports every named image of an OCI image layout (a directory, or a tar or tar.gz of one) or of a
        `docker save` archive into berthd's image store. Run it while berthd is stopped.

          --name <image>   name the image(s) in the archive, e.g. registry.k8s.io/pause:3.10
        """;

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        string? name = null;
        string? archive = null;
        var rest = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--name" when i + 1 < args.Count:
                    name = args[++i];
                    break;
                case "--help" or "-h":
                    Console.Out.WriteLine(Usage);
                    return 0;
                case "--config" or "--root" or "--state" or "--socket" or "--log-level" when i + 1 < args.Count:
                    rest.Add(args[i]);
                    rest.Add(args[++i]);
                    break;
                default:
                    if (args[i].StartsWith('-') || archive is not null)
                        throw new ConfigException($"import: unexpected argument '{args[i]}' (see berthd import --help)");
                    archive = args[i];
                    break;
            }
        }
        if (archive is null) throw new ConfigException("import: name the archive to import (see berthd import --help)");

        var config = ConfigLoader.Load(CommandLineOptions.Parse(rest));
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
