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
    public static async Task<int> RunAsync(CommandLineOptions flags, string image, string file)
    {
        var config = ConfigLoader.Load(flags);
        try
        {
            var exported = await ImageExporter.ExportAsync(ComponentOptions.ImageStore(config).Root, image, Path.GetFullPath(file), CancellationToken.None);
            Console.Out.WriteLine($"exported {string.Join(", ", exported.RepoTags.DefaultIfEmpty(exported.Id))} to {file}");
            return 0;
        }
        catch (ImageStoreException e)
        {
            await Console.Error.WriteLineAsync($"berthd export: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"berthd export: {file}: {e.Message}");
            return 1;
        }
    }
}
