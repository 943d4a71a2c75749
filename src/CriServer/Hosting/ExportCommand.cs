using Berth.CriServer.Configuration;
using Berth.ImageStore;
using Berth.ImageStore.Images;

namespace Berth.CriServer.Hosting;

/// <summary>
/// <c>berthd export</c>: one image from the store as an OCI image layout tar (with Docker's manifest.json), for
/// <c>berthd import</c> on another node, skopeo or docker load. It only reads the store, so berthd may be running.
/// </summary>
internal static class ExportCommand
{
    public const string Usage = """
        Usage: berthd export [--config <path>] [--root <dir>] <image> <file.tar>

        Writes the image (by name, digest or ID) as an OCI image layout tar: oci-layout, index.json naming each of
        its tags, the blobs as pulled, and a docker-save manifest.json.
        """;

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        var positional = new List<string>();
        var rest = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--help" or "-h":
                    Console.Out.WriteLine(Usage);
                    return 0;
                case "--config" or "--root" when i + 1 < args.Count:
                    rest.Add(args[i]);
                    rest.Add(args[++i]);
                    break;
                default:
                    if (args[i].StartsWith('-')) throw new ConfigException($"export: unexpected argument '{args[i]}' (see berthd export --help)");
                    positional.Add(args[i]);
                    break;
            }
        }
        if (positional.Count != 2) throw new ConfigException("export: name the image and the file to write (see berthd export --help)");
        var config = ConfigLoader.Load(CommandLineOptions.Parse(rest));
        try
        {
            var image = await ImageExporter.ExportAsync(ComponentOptions.ImageStore(config).Root, positional[0], Path.GetFullPath(positional[1]), CancellationToken.None);
            Console.Out.WriteLine($"exported {string.Join(", ", image.RepoTags.DefaultIfEmpty(image.Id))} to {positional[1]}");
            return 0;
        }
        catch (ImageStoreException e)
        {
            await Console.Error.WriteLineAsync($"berthd export: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"berthd export: {positional[1]}: {e.Message}");
            return 1;
        }
    }
}
