using System.Collections.Concurrent;

namespace Berth.Runtime.Containers;

/// <summary>
/// Exec (streaming and ExecSync) and attach on running containers, with a bound on the execs one container may
/// have at once: each holds a runtime exec process and pipes in berthd.
/// </summary>
internal sealed class ContainerInteractive(ContainerTable table, RuntimeHandlers handlers)
{
    private readonly ConcurrentDictionary<string, int> _execs = new(StringComparer.Ordinal);

    /// <summary>Checks that a container can take an exec or attach now (it exists and runs).</summary>
    public ContainerRecord RequireRunning(string id, string what = "it must be running")
    {
        var record = table.GetRequired(id);
        if (record.State != ContainerState.Running)
            throw new ContainerStateException($"container {id} is {record.State}; {what}");
        return record;
    }

    public async Task<ExecResult> ExecSyncAsync(string id, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var record = RequireRunning(id, "commands run only in a running container");
        if (command.Count == 0) throw new ContainerRequestException("cmd is required");
        using var slot = TakeExecSlot(id);
        return await handlers.Of(record).ExecSyncAsync(record, command, timeout, cancellationToken);
    }

    public async Task<int> ExecAsync(string id, IReadOnlyList<string> command, InteractiveStreams io, CancellationToken cancellationToken)
    {
        var record = RequireRunning(id);
        if (command.Count == 0) throw new ContainerRequestException("cmd is required");
        using var slot = TakeExecSlot(id);
        return await handlers.Of(record).ExecAsync(record, command, io, cancellationToken);
    }

    public async Task AttachAsync(string id, InteractiveStreams io, CancellationToken cancellationToken)
    {
        var record = RequireRunning(id);
        await handlers.Of(record).AttachAsync(record, io, cancellationToken);
    }

    private ExecSlot TakeExecSlot(string id)
    {
        var running = _execs.AddOrUpdate(id, 1, (_, n) => n + 1);
        if (running <= ContainerManager.MaxExecsPerContainer) return new ExecSlot(this, id);
        ReleaseExecSlot(id);
        throw new ContainerLimitException($"container {id} has {ContainerManager.MaxExecsPerContainer} execs running already; wait for one to end");
    }

    private void ReleaseExecSlot(string id)
    {
        if (_execs.AddOrUpdate(id, 0, (_, n) => n - 1) <= 0) _execs.TryRemove(KeyValuePair.Create(id, 0));
    }

    private readonly struct ExecSlot(ContainerInteractive owner, string id) : IDisposable
    {
        public void Dispose() => owner.ReleaseExecSlot(id);
    }
}
