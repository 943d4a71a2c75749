using Berth.CriServer.Configuration;
using Berth.ImageStore;

namespace Berth.CriServer.Hosting;

/// <summary>Maps berthd's config onto each component's own options, so components never see the config file.</summary>
internal static class ComponentOptions
{
    public static ImageStoreOptions ImageStore(BerthConfig config)
    {
        var platform = config.Images.Platform.Split('/');
        return new ImageStoreOptions
        {
            Root = config.Root,
            Os = platform[0],
            Architecture = platform[1],
            Variant = platform.Length > 2 ? platform[2] : null,
            MaxConcurrentDownloads = config.Images.MaxConcurrentDownloads,
            Registries = config.Images.Registries.ToDictionary(
                pair => pair.Key,
                pair => new RegistryHostOptions
                {
                    Mirrors = pair.Value.Mirrors,
                    Server = pair.Value.Server,
                    Insecure = pair.Value.Insecure,
                    CaFile = pair.Value.CaFile,
                    SkipVerify = pair.Value.SkipVerify,
                },
                StringComparer.Ordinal),
        };
    }
}
