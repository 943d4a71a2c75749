using System.Collections.Concurrent;
using Berth.Runtime.Containers;
using Berth.Runtime.Spec;
using Berth.ShimProtocol;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>
/// A runtime handler without processes: containers "exit" when a signal they do not ignore arrives, by writing the
/// exit file as a shim does, and their "shim" then goes. Every call is logged; any call can be made to fail.
/// </summary>
internal sealed class FakeRuntime : IContainerRuntime
{
    private readonly ConcurrentDictionary<string, string> _exitFiles = new();
    private readonly ConcurrentDictionary<int, Action> _watches = new();
    private readonly ConcurrentDictionary<int, bool> _alive = new();
    private readonly ConcurrentDictionary<string, int> _shims = new();
    private readonly ConcurrentDictionary<string, System.Diagnostics.Stopwatch> _started = new();
    private int _nextPid = 1000;

    public string Binary => "fake-runc";

    public ConcurrentQueue<string> Calls { get; } = new();

    /// <summary>A call ("create", "start", "kill SIGTERM", ...) to fail with this exception.</summary>
    public ConcurrentDictionary<string, Exception> Failures { get; } = new();

    /// <summary>Signals the container's init ignores (a stop that must escalate).</summary>
    public HashSet<string> IgnoredSignals { get; } = [];

    /// <summary>
    /// The init is PID 1 of its own PID namespace and installs its signal handlers this long after start: until then
    /// the kernel drops every signal but SIGKILL sent to it. Null: signals always arrive.
    /// </summary>
    public TimeSpan? HandlersAfterStart { get; set; }

    /// <summary>Signals the init received (not those the kernel dropped), by container.</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<string>> Delivered { get; } = new();

    /// <summary>Signals arrive but nothing exits: the shim died and no exit file is coming.</summary>
    public bool NobodyExits { get; set; }

    public Task<OciRuntimeFeatures> FeaturesAsync() => Task.FromResult(OciRuntimeFeatures.None);

    public Task<CreatedContainer> CreateAsync(ContainerRecord record, string exitFile, CancellationToken cancellationToken)
    {
        Call("create", record.Id);
        cancellationToken.ThrowIfCancellationRequested();
        Assert.True(File.Exists(Path.Combine(record.Bundle, "config.json")), "the bundle's config.json is written before the runtime is asked");
        _exitFiles[record.Id] = exitFile;
        var pid = Interlocked.Increment(ref _nextPid);
        _alive[pid] = true;
        _shims[record.Id] = pid;
        return Task.FromResult(new CreatedContainer(new ShimProcess(pid, 1), pid + 1));
    }

    public Task StartAsync(string id, CancellationToken cancellationToken)
    {
        Call("start", id);
        _started[id] = System.Diagnostics.Stopwatch.StartNew();
        return Task.CompletedTask;
    }

    public Task<string?> CheckpointUnsupportedAsync() => Task.FromResult<string?>(null);

    public Task CheckpointAsync(string id, string imagePath, string workPath, CancellationToken cancellationToken)
    {
        Call("checkpoint", id);
        File.WriteAllText(Path.Combine(imagePath, "pages-1.img"), "memory");
        File.WriteAllText(Path.Combine(workPath, "dump.log"), "Dumping finished successfully\n");
        return Task.CompletedTask;
    }

    public Task<CreatedContainer> RestoreAsync(ContainerRecord record, string exitFile, string imagePath, string workPath, CancellationToken cancellationToken)
    {
        Call("restore", record.Id);
        Assert.True(File.Exists(Path.Combine(imagePath, "pages-1.img")), "the restore is handed the checkpoint's images");
        _exitFiles[record.Id] = exitFile;
        var pid = Interlocked.Increment(ref _nextPid);
        _alive[pid] = true;
        _shims[record.Id] = pid;
        _started[record.Id] = System.Diagnostics.Stopwatch.StartNew();
        return Task.FromResult(new CreatedContainer(new ShimProcess(pid, 1), pid + 1));
    }

    public bool InitWouldDropSignal(ContainerRecord record, int signal) =>
        signal != Signals.Kill && HandlersAfterStart is { } after && _started.TryGetValue(record.Id, out var since) && since.Elapsed < after;

    public Task<bool> KillAsync(string id, string signal, bool all, CancellationToken cancellationToken)
    {
        Call($"kill {signal}{(all ? " all" : "")}", id);
        if (signal != "SIGKILL" && HandlersAfterStart is { } after && _started.TryGetValue(id, out var since) && since.Elapsed < after)
            return Task.FromResult(true); // dropped by the kernel
        Delivered.GetOrAdd(id, _ => new()).Enqueue(signal);
        if (NobodyExits || IgnoredSignals.Contains(signal) || !_exitFiles.ContainsKey(id)) return Task.FromResult(!NobodyExits);
        Exit(id, signal == "SIGKILL" ? 137 : 143);
        return Task.FromResult(true);
    }

    public Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        Call("delete", id);
        return Task.CompletedTask;
    }

    public Task UpdateAsync(string id, OciResources resources, CancellationToken cancellationToken)
    {
        Call("update", id);
        return Task.CompletedTask;
    }

    public Task<ExecResult> ExecSyncAsync(ContainerRecord record, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Call("execsync", record.Id);
        return Task.FromResult(new ExecResult(0, [], []));
    }

    public async Task<int> ExecAsync(ContainerRecord record, IReadOnlyList<string> command, InteractiveStreams io, CancellationToken cancellationToken)
    {
        Call("exec", record.Id);
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return 0;
    }

    public Task AttachAsync(ContainerRecord record, InteractiveStreams io, CancellationToken cancellationToken)
    {
        Call("attach", record.Id);
        return Task.CompletedTask;
    }

    public Task ReopenLogAsync(ContainerRecord record, CancellationToken cancellationToken)
    {
        Call("reopen", record.Id);
        return Task.CompletedTask;
    }

    public bool IsShimAlive(ShimProcess shim) => _alive.ContainsKey(shim.Pid);

    public void WatchShim(ShimProcess shim, Action gone)
    {
        if (!_alive.ContainsKey(shim.Pid))
        {
            ThreadPool.QueueUserWorkItem(_ => gone());
            return;
        }
        _watches[shim.Pid] = gone;
    }

    public void KillShim(string id, ShimProcess? known)
    {
        Call(known is null ? "kill-shims" : "kill-shim", id);
        if (known is not null) ShimGone(known.Pid);
    }

    /// <summary>The container's init exits with <paramref name="code"/>: the shim writes the exit file, then goes.</summary>
    public void Exit(string id, int code)
    {
        var file = _exitFiles[id];
        File.WriteAllText(file + ShimExitStatus.TemporarySuffix, new ShimExitStatus(code, 1_700_000_000_000_000_000).Format());
        File.Move(file + ShimExitStatus.TemporarySuffix, file);
        if (_shims.TryGetValue(id, out var pid)) ShimGone(pid);
    }

    /// <summary>The shim process dies (killed by hand, say), whether or not its container did.</summary>
    public void ShimGone(int pid)
    {
        if (!_alive.TryRemove(pid, out _)) return;
        if (_watches.TryRemove(pid, out var gone)) ThreadPool.QueueUserWorkItem(_ => gone());
    }

    /// <summary>berthd went away: its pidfds closed with it, and the shims' ends reach nobody.</summary>
    public void ForgetWatches() => _watches.Clear();

    public string[] CallsFor(string id) => [.. Calls.Where(c => c.EndsWith(" " + id, StringComparison.Ordinal)).Select(c => c[..^(id.Length + 1)])];

    private void Call(string call, string id)
    {
        Calls.Enqueue($"{call} {id}");
        if (Failures.TryGetValue(call, out var failure)) throw failure;
    }
}

/// <summary>A rootfs that is a plain directory (no overlay, no root needed); it can be made to fail.</summary>
internal sealed class FakeRootfs : IRootfsMounter
{
    public Exception? MountFailure { get; set; }

    public List<string> Unmounted { get; } = [];

    public void Mount(IReadOnlyList<string> lowerDirs, string upper, string work, string target, LayerIdmap? idmap)
    {
        Directory.CreateDirectory(upper);
        Directory.CreateDirectory(work);
        if (MountFailure is not null) throw MountFailure;
        Directory.CreateDirectory(target);
    }

    public void MountReadOnly(IReadOnlyList<string> lowerDirs, string target, LayerIdmap? idmap) => Directory.CreateDirectory(target);

    public void Unmount(string target)
    {
        lock (Unmounted) Unmounted.Add(target);
    }
}
