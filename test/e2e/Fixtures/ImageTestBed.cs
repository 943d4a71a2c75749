namespace Berth.E2E.Tests.Fixtures;

/// <summary>A registry, a pusher for it and a berthd, torn down together.</summary>
public sealed class ImageTestBed : IAsyncDisposable
{
    private ImageTestBed(RegistryServer registry, BerthDaemon daemon)
    {
        Registry = registry;
        Daemon = daemon;
        Pusher = new RegistryPusher(registry);
    }

    public RegistryServer Registry { get; }
    public BerthDaemon Daemon { get; }
    public RegistryPusher Pusher { get; }

    /// <summary><c>127.0.0.1:port/repository:tag</c>.</summary>
    public string Ref(string repositoryAndTag) => $"{Registry.Host}/{repositoryAndTag}";

    public static async Task<ImageTestBed> StartAsync(RegistryMode mode = RegistryMode.Plain, Func<RegistryServer, string>? extraConfig = null)
    {
        var registry = await RegistryServer.StartAsync(mode);
        try
        {
            var daemon = await BerthDaemon.StartAsync(new DaemonOptions { ExtraConfig = extraConfig?.Invoke(registry) ?? "" });
            return new ImageTestBed(registry, daemon);
        }
        catch
        {
            await registry.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Pusher.Dispose();
        await Daemon.DisposeAsync();
        await Registry.DisposeAsync();
    }
}
