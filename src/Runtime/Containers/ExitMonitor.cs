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

    // What each container's memory.events counted while it ran: a systemd scope's cgroup is gone by the time the
    // exit is handled, and with it the counts. Killed: oom_kill moved; Reached: oom moved (the limit was hit and the
    // kernel's OOM killer was to run), seen even when the scope went before oom_kill could be read.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, OomSeen> _oomSeen = new(StringComparer.Ordinal);

    // The parent's (the pod's) oom_kill count when the container's watch began. v2 counts are hierarchical, so a
    // rise there still shows an OOM kill when the scope was removed before its own memory.events was read.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _parentOomKills = new(StringComparer.Ordinal);

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

    private void WatchShim(ContainerRecord record)
    {
        if (record.Shim is { } shim && _handlers.Find(record.RuntimeHandler) is { } runtime) runtime.WatchShim(shim, () => OnShimGone(record.Id));
    }

    /// <summary>v2: memory.events says when its counts change; what they showed is remembered until the exit.</summary>
    private void WatchOom(ContainerRecord record)
    {
        if (!_cgroupV2) return;
        var events = $"/sys/fs/cgroup{ContainerManager.CgroupDirectoryOf(record)}/memory.events";
        void Look()
        {
            var seen = ReadOom(events);
            if (seen != OomSeen.None) _oomSeen.AddOrUpdate(record.Id, seen, (_, before) => before | seen);
        }

        _cgroupEvents.Watch(record.Id, events, Look);
        Look();
        if (ParentOomKills(record) is { } parent) _parentOomKills[record.Id] = parent;
    }

    /// <summary>
    /// v2: oom_kill in the memory.events of the pod's cgroup, the parent of the one CRI named (crun puts the init one
    /// deeper, in &lt;scope&gt;/container, which goes with the scope); null when it can't be read.
    /// </summary>
    private static long? ParentOomKills(ContainerRecord record) =>
        record.CgroupsPath.Length > 0 && Path.GetDirectoryName(Cgroups.CgroupPaths.Resolve(record.CgroupsPath)) is { Length: > 0 } parent
            ? ReadOomCounts($"/sys/fs/cgroup{parent}/memory.events")?.Killed
            : null;

    private void ForgetOom(string id, ContainerChangeKind kind)
    {
        if (kind is not (ContainerChangeKind.Exited or ContainerChangeKind.Removed)) return;
        _cgroupEvents.Unwatch(id);
        if (kind != ContainerChangeKind.Removed) return;
        _oomSeen.TryRemove(id, out _);
        _parentOomKills.TryRemove(id, out _);
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
            // SIGKILL after the limit was hit is the OOM killer's, even when the kill count could not be read.
            _oomSeen.TryRemove(id, out var seen);
            var parentRose = _parentOomKills.TryRemove(id, out var before) && ParentOomKills(record) > before;
            var oom = seen.HasFlag(OomSeen.Killed) || (seen.HasFlag(OomSeen.Reached) || parentRose) && exit.ExitCode == 137 || OomKilled(record);
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

    /// <summary>v1: memory.oom_control's oom_kill count; v2: memory.events'.</summary>
    private bool OomKilled(ContainerRecord record)
    {
        if (record.CgroupsPath.Length == 0) return false;
        var path = ContainerManager.CgroupDirectoryOf(record);
        return ReadOom(_cgroupV2 ? $"/sys/fs/cgroup{path}/memory.events" : $"/sys/fs/cgroup/memory{path}/memory.oom_control").HasFlag(OomSeen.Killed);
    }

    private static OomSeen ReadOom(string file) => ReadOomCounts(file) is { } counts
        ? (counts.Reached > 0 ? OomSeen.Reached : OomSeen.None) | (counts.Killed > 0 ? OomSeen.Killed : OomSeen.None)
        : OomSeen.None;

    /// <summary>The oom and oom_kill counts of memory.events (v2) or memory.oom_control (v1); null when the file is gone.</summary>
    private static (long Reached, long Killed)? ReadOomCounts(string file)
    {
        try
        {
            long reached = 0, killed = 0;
            foreach (var line in File.ReadLines(file))
            {
                if (line.StartsWith("oom_kill ", StringComparison.Ordinal)) _ = long.TryParse(line.AsSpan("oom_kill ".Length), out killed);
                else if (line.StartsWith("oom ", StringComparison.Ordinal)) _ = long.TryParse(line.AsSpan("oom ".Length), out reached);
            }
            return (reached, killed);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    [Flags]
    private enum OomSeen
    {
        None = 0,
        Reached = 1,
        Killed = 2,
    }

    public void Dispose() => _watcher.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "container {Id}: its shim is gone while the container ran; killing the container and reporting it exited")]
    private static partial void LogShimGone(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "container {Id}: undoing what an interrupted CreateContainer left")]
    private static partial void LogRecovering(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Error, Message = "container {Id}: handling its exit failed")]
    private static partial void LogExitFailed(ILogger logger, string id, Exception exception);
}
