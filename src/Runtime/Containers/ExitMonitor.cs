using Microsoft.Extensions.Logging;

namespace Berth.Runtime.Containers;

/// <summary>
/// Turns the ends of containers into the Exited state. A shim writes an exit file when its container's init dies: a
/// watch on that directory takes it at once, and at startup the files left there tell what died while berthd was
/// down. A shim that dies before its container (killed by hand, by the OOM killer) writes none: its exit is seen
/// through a pidfd, and the container is killed and reported exited, as containerd does with a dead shim.
/// </summary>
internal sealed partial class ExitMonitor : IDisposable
{
    private readonly ContainerTable _table;
    private readonly RuntimeHandlers _handlers;
    private readonly ContainerTeardown _teardown;
    private readonly string _exitDirectory;
    private readonly bool _cgroupV2;
    private readonly ILogger _logger;
    private readonly FileSystemWatcher _watcher;
    private readonly Berth.Native.FileChangeWatcher _cgroupEvents;

    // Containers whose memory.events counted an OOM kill while berthd watched: a systemd scope's cgroup is gone by the
    // time the exit is handled, and with it the counts. The shim watches too, from its own loop, and says so in the
    // exit file; this watch covers containers of shims older than that.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _oomKilled = new(StringComparer.Ordinal);

    public ExitMonitor(
        ContainerTable table, RuntimeHandlers handlers, ContainerTeardown teardown, string exitDirectory, bool cgroupV2, Berth.Native.FileChangeWatcher cgroupEvents, ILogger logger)
    {
        (_table, _handlers, _teardown, _exitDirectory, _cgroupV2, _cgroupEvents, _logger) = (table, handlers, teardown, exitDirectory, cgroupV2, cgroupEvents, logger);
        Directory.CreateDirectory(exitDirectory);
        _table.Changed += change =>
        {
            // The cgroup is watched from create on, before the process runs: one that is OOM-killed at once has its
            // scope removed before its start is even recorded.
            if (change.Kind == ContainerChangeKind.Created)
            {
                WatchShim(change.Record);
                WatchOom(change.Record);
            }
            else ForgetOom(change.Record.Id, change.Kind);
        };
        // Watched from the start, and read by recovery after: no exit falls between the two.
        _watcher = new FileSystemWatcher(exitDirectory) { NotifyFilter = NotifyFilters.FileName, IncludeSubdirectories = false };
        _watcher.Created += (_, e) => OnExitFile(e.Name);
        _watcher.Renamed += (_, e) => OnExitFile(e.Name);
        _watcher.EnableRaisingEvents = true;
    }

    /// <summary>
    /// After a restart: undoes interrupted creates, takes in exits that happened while berthd was down, marks
    /// containers whose shim is gone (a reboot, or a killed shim) as exited with an unknown status, and watches
    /// the rest.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        foreach (var record in _table.List())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (record.State == ContainerState.Creating)
            {
                LogRecovering(_logger, record.Id);
                await _teardown.RollBackAsync(record);
            }
            else if (record.State is ContainerState.Running or ContainerState.Created)
            {
                if (_handlers.Find(record.RuntimeHandler) is not { } runtime)
                    await MarkExitedAsync(record, 255, "Error", $"its runtime handler '{record.RuntimeHandler}' is no longer configured; berthd cannot reach the container");
                else if (File.Exists(_teardown.ExitFileOf(record.Id))) await HandleExitAsync(record.Id);
                else if (record is { State: ContainerState.Created, RestoreFrom: { } checkpoint })
                {
                    // Waiting for StartContainer to restore it, which it still can while its checkpoint is there.
                    if (!Directory.Exists(checkpoint))
                        await MarkExitedAsync(record with { RestoreFrom = null }, 255, "Error", "its unpacked checkpoint was gone when berthd started");
                }
                else if (record.Shim is not { } shim || !runtime.IsShimAlive(shim))
                    await MarkExitedAsync(record, 255, "Error", "the container's shim was gone when berthd started (a reboot or a killed shim)");
                else
                {
                    WatchShim(record);
                    WatchOom(record);
                }
            }
        }
        // Exit files of containers that are gone (removed while the watch was down).
        foreach (var file in Directory.EnumerateFiles(_exitDirectory))
        {
            if (_table.Get(Path.GetFileName(file)) is null) File.Delete(file);
        }
    }

    /// <summary>Reports an exit whose status nobody will write (the shim is gone), after the runtime killed what was left.</summary>
    public async Task MarkExitedAsync(ContainerRecord record, int code, string reason, string message)
    {
        if (_handlers.Find(record.RuntimeHandler) is { } runtime) await runtime.DeleteAsync(record.Id, CancellationToken.None);
        _table.Commit(record with { State = ContainerState.Exited, ExitCode = code, FinishedAt = ContainerTable.Now(), Reason = reason, Message = message },
            ContainerChangeKind.Exited);
    }

    /// <summary>A container restored at StartContainer got its shim then: watched from now on, as others are from create.</summary>
    public void WatchRestored(ContainerRecord record)
    {
        WatchShim(record);
        WatchOom(record);
    }

    private void WatchShim(ContainerRecord record)
    {
        if (record.Shim is { } shim && _handlers.Find(record.RuntimeHandler) is { } runtime) runtime.WatchShim(shim, () => OnShimGone(record.Id));
    }

    /// <summary>v2: memory.events says when its counts change; what they showed is remembered until the exit.</summary>
    private void WatchOom(ContainerRecord record)
    {
        if (!_cgroupV2) return;
        var events = $"/sys/fs/cgroup{ContainerManager.CgroupDirectoryOf(record)}/{Berth.Cgroups.MemoryEvents.V2File}";
        void Look()
        {
            if (ReadOomKills(events) > 0) _oomKilled[record.Id] = true;
        }

        _cgroupEvents.Watch(record.Id, events, Look);
        Look();
    }

    private void ForgetOom(string id, ContainerChangeKind kind)
    {
        if (kind is not (ContainerChangeKind.Exited or ContainerChangeKind.Removed)) return;
        _cgroupEvents.Unwatch(id);
        if (kind == ContainerChangeKind.Removed) _oomKilled.TryRemove(id, out _);
    }

    private void OnExitFile(string? name)
    {
        if (name is null || name.EndsWith(ShimProtocol.ShimExitStatus.TemporarySuffix, StringComparison.Ordinal)) return;
        Run(name, () => HandleExitAsync(name));
    }

    private void OnShimGone(string id) => Run(id, async () =>
    {
        using var held = await _table.LockAsync(id, CancellationToken.None);
        var record = _table.Get(id);
        // A shim writes the exit file before it leaves: that is an ordinary exit, which the exit watch takes.
        if (record is not { State: ContainerState.Running or ContainerState.Created } || File.Exists(_teardown.ExitFileOf(id))) return;
        LogShimGone(_logger, id);
        await MarkExitedAsync(record, 137, "Error", "berth-shim exited before the container did (killed?); the container was killed");
    });

    private void Run(string id, Func<Task> handle) => _ = Task.Run(async () =>
    {
        try
        {
            await handle();
        }
        catch (Exception e)
        {
            LogExitFailed(_logger, id, e);
        }
    });

    /// <summary>The shim wrote the exit file: the container is Exited (OOMKilled when its cgroup saw an OOM kill).</summary>
    private async Task HandleExitAsync(string id)
    {
        var file = _teardown.ExitFileOf(id);
        using var held = await _table.LockAsync(id, CancellationToken.None);
        var record = _table.Get(id);
        if (record is null || !File.Exists(file)) return;
        if (record.State is ContainerState.Running or ContainerState.Created)
        {
            // A file that does not parse (cut short by a crash of the node) is an exit of unknown status.
            var exit = ShimProtocol.ShimExitStatus.Parse(await File.ReadAllTextAsync(file)) ?? new(255, ContainerTable.Now());
            // The container's own cgroup counted an OOM kill: as the shim saw it, as berthd's watch did, or as it reads now.
            var oom = exit.OomKilled | _oomKilled.TryRemove(id, out _) || OomKilled(record);
            record = record with
            {
                State = ContainerState.Exited,
                ExitCode = exit.ExitCode,
                FinishedAt = exit.ExitedAt,
                Reason = oom ? "OOMKilled" : exit.ExitCode == 0 ? "Completed" : "Error",
            };
            // The runtime's state and the cgroup go now; the rootfs stays for RemoveContainer.
            await _handlers.Of(record).DeleteAsync(id, CancellationToken.None);
            _table.Commit(record, ContainerChangeKind.Exited);
        }
        File.Delete(file);
        _table.ExitOf(id).TrySetResult();
    }

    /// <summary>v1: memory.oom_control's oom_kill count; v2: memory.events'. A cgroup already gone counts none.</summary>
    private bool OomKilled(ContainerRecord record)
    {
        if (record.CgroupsPath.Length == 0) return false;
        var path = ContainerManager.CgroupDirectoryOf(record);
        return ReadOomKills(_cgroupV2 ? $"/sys/fs/cgroup{path}/{Berth.Cgroups.MemoryEvents.V2File}" : $"/sys/fs/cgroup/memory{path}/memory.oom_control") > 0;
    }

    private static long ReadOomKills(string file)
    {
        try
        {
            return Berth.Cgroups.MemoryEvents.Parse(File.ReadAllBytes(file)).OomKill;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    public void Dispose() => _watcher.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "container {Id}: its shim is gone while the container ran; killing the container and reporting it exited")]
    private static partial void LogShimGone(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "container {Id}: undoing what an interrupted CreateContainer left")]
    private static partial void LogRecovering(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Error, Message = "container {Id}: handling its exit failed")]
    private static partial void LogExitFailed(ILogger logger, string id, Exception exception);
}
