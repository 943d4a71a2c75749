namespace Berth.E2E.Tests.Fixtures;

/// <summary>One berthd shared by the tests of a collection that only read from it.</summary>
public sealed class DaemonFixture : IAsyncLifetime
{
    private BerthDaemon? _daemon;

    public BerthDaemon Daemon => _daemon ?? throw new InvalidOperationException("berthd is not started");

    public async Task InitializeAsync() => _daemon = await BerthDaemon.StartAsync(new DaemonOptions { EnableMetrics = true });

    public async Task DisposeAsync()
    {
        if (_daemon is not null) await _daemon.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class SharedDaemonCollection : ICollectionFixture<DaemonFixture>
{
    public const string Name = "shared berthd";
}
