using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Berth.Runtime.Spec;
using Microsoft.Extensions.Logging;

namespace Berth.Runtime.Containers;

/// <summary>An OCI runtime a RuntimeClass handler names.</summary>
public sealed record RuntimeHandlerSettings(string Binary);

/// <summary>What a handler's OCI runtime can do on this node, beyond what every runtime does.</summary>
public sealed record HandlerFeatures(bool RecursiveReadonlyMounts);

/// <summary>Where containers keep their records and layers (persistent) and their bundles and exit files (volatile).</summary>
public sealed record ContainerOptions
{
    /// <summary>Records, upper and work dirs, image volumes: under the persistent root.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Runtime state and exit files: under the volatile state dir.</summary>
    public required string StateDirectory { get; init; }

    /// <summary>Bundles: short paths, as the shim's sockets live in them and a unix socket path has 107 bytes at most.</summary>
    public required string BundleDirectory { get; init; }

    public required string ShimBinary { get; init; }

    /// <summary>Handlers by name; "" is the default handler.</summary>
    public required IReadOnlyDictionary<string, RuntimeHandlerSettings> Handlers { get; init; }

    public NodeSettings Node { get; init; } = new();

    /// <summary>The longest shim socket path: the bundle is &lt;bundles&gt;/&lt;64 hex&gt;.</summary>
    public int LongestSocketPath => Path.Combine(BundleDirectory, new string('0', 64), ShimClient.ControlSocket).Length;
}

/// <summary>
/// Containers: created through a berth-shim each (which runs <c>runc create</c> and then keeps the container's
/// stdio, log and exit status), started, stopped, updated and exec'd through the OCI runtime, and reported from
/// crash-safe records. A shim writes an exit file when its container dies; a watch on that directory turns it
/// into the Exited state at once, and at startup the same files tell what died while berthd was down.
/// </summary>
public sealed partial class ContainerManager : IDisposable
{
    private const int ExecOutputCap = 16 * 1024 * 1024;
    private static readonly TimeSpan ShimCheckPeriod = TimeSpan.FromSeconds(2);

    private readonly ContainerOptions _options;
    private readonly ILogger<ContainerManager> _logger;
    private readonly Berth.Records.RecordStore<ContainerRecord> _store;
    private readonly Dictionary<string, OciRuntime> _runtimes;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _exits = new(StringComparer.Ordinal);
    private readonly FileSystemWatcher _exitWatcher;
    private readonly CancellationTokenSource _stopping = new();
    private readonly string _exitDirectory;
    private readonly string _bundles;
    private readonly string _records;

    public ContainerManager(ContainerOptions options, ILogger<ContainerManager> logger)
    {
        _options = options;
        _logger = logger;
        _records = Path.Combine(options.DataDirectory, "records");
        _store = new(_records, ContainerJsonContext.Default.ContainerRecord, r => r.Id, r => r.NameKey, "container", logger);
        if (options.LongestSocketPath > 107)
            throw new ContainerRuntimeException($"{options.BundleDirectory} is too long for the shim's unix sockets; shorten the state directory");
        _bundles = options.BundleDirectory;
        _exitDirectory = Path.Combine(options.StateDirectory, "exits");
        Directory.CreateDirectory(_bundles);
        Directory.CreateDirectory(_exitDirectory);
        _runtimes = options.Handlers.ToDictionary(
            h => h.Key,
            h => new OciRuntime(h.Value.Binary, Path.Combine(options.StateDirectory, "runtime", h.Key.Length == 0 ? "default" : h.Key)),
            StringComparer.Ordinal);
        _exitWatcher = new FileSystemWatcher(_exitDirectory) { NotifyFilter = NotifyFilters.FileName, IncludeSubdirectories = false };
        _exitWatcher.Created += (_, e) => OnExitFile(e.Name);
        _exitWatcher.Renamed += (_, e) => OnExitFile(e.Name);
        _exitWatcher.EnableRaisingEvents = true;
    }

    /// <summary>Raised after a container changes state: created, started, exited, removed.</summary>
    public event Action<ContainerChange>? Changed;

    public IReadOnlyList<ContainerRecord> List() => _store.List();

    public ContainerRecord? Get(string id) => _store.Get(id);

    /// <summary>
    /// The container an operator named: by its ID, else by a unique prefix of one (crictl passes abbreviated IDs
    /// through); null when none or several match.
    /// </summary>
    public ContainerRecord? Find(string id) => _store.Get(id) ?? (_store.ResolvePrefix(id) is { } full ? _store.Get(full) : null);

    /// <summary>The full ID of <see cref="Find"/>'s container, or <paramref name="id"/> unchanged, to be reported as not found.</summary>
    public string ResolveId(string id) => Find(id)?.Id ?? id;

    /// <summary>The container's writable layer (the overlay's upper dir), whose usage ContainerStats reports.</summary>
    public static string WritableLayerOf(ContainerRecord record) => Path.Combine(record.Directory, "upper");

    public ContainerRecord GetRequired(string id) => _store.Get(id) ?? throw new ContainerNotFoundException(id);

    /// <summary>The features of a configured handler ("" is the default one); null for an unknown name.</summary>
    public async Task<HandlerFeatures?> FeaturesAsync(string handler)
    {
        if (!_runtimes.TryGetValue(handler, out var runtime)) return null;
        var mountOptions = await runtime.MountOptionsAsync();
        return new HandlerFeatures(RecursiveReadonlyMounts: _options.Node.MountSetattr && mountOptions.Contains("rro"));
    }

    public async Task<ContainerRecord> CreateAsync(ContainerCreateRequest request, CancellationToken cancellationToken)
    {
        if (!_runtimes.TryGetValue(request.RuntimeHandler, out var runtime))
            throw new ContainerRequestException($"runtime_handler: '{request.RuntimeHandler}' is not a configured runtime handler");
        for (var i = 0; i < request.Spec.Mounts.Count; i++)
        {
            if (request.Spec.Mounts[i].RecursiveReadonly && await FeaturesAsync(request.RuntimeHandler) is { RecursiveReadonlyMounts: false })
                throw new ContainerRequestException(
                    $"mounts[{i}].recursive_read_only: runtime handler '{request.RuntimeHandler}' ({runtime.Binary}) cannot make recursive read-only mounts on this node");
        }
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var record = new ContainerRecord
        {
            Id = id,
            PodId = request.PodId,
            Name = request.Name,
            Attempt = request.Attempt,
            NameKey = $"{request.Name}_{request.Attempt}_{request.PodNameKey}",
            State = ContainerState.Creating,
            CreatedAt = Now(),
            Image = request.ImageSpec,
            ImageRef = request.Image.ImageRef,
            ImageName = request.Image.ImageName,
            LogPath = request.LogPath,
            Labels = new(request.Labels),
            Annotations = new(request.Annotations),
            Mounts = [.. request.Mounts],
            Resources = request.Spec.Resources,
            RuntimeHandler = request.RuntimeHandler,
            Tty = request.Spec.Tty,
            Stdin = request.Stdin,
            StdinOnce = request.StdinOnce,
            StopSignal = request.StopSignal,
            LowerDirs = [.. request.LowerDirs],
            Bundle = Path.Combine(_bundles, id),
            Directory = Path.Combine(_options.DataDirectory, id),
        };

        // The record first: a crash from here on leaves a Creating record that RecoverAsync undoes.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        _store.Reserve(record, holder => new ContainerExistsException(
            $"metadata: a container named {record.Name} (attempt {record.Attempt}) exists already in pod {record.PodId}: {holder}"));
        var reserved = watch.Elapsed.TotalMilliseconds;
        var step = "preparing the bundle";
        try
        {
            Directory.CreateDirectory(record.Bundle);
            step = "mounting the root filesystem";
            var rootfs = Path.Combine(record.Bundle, "rootfs");
            ContainerRootfs.Mount(request.LowerDirs, WritableLayerOf(record), Path.Combine(record.Directory, "work"), rootfs);

            step = "building the OCI spec";
            var volumes = new Dictionary<string, string>(StringComparer.Ordinal);
            var index = 0;
            foreach (var volume in request.Image.Volumes.Keys)
            {
                var hostDirectory = Path.Combine(record.Directory, "volumes", (index++).ToString(System.Globalization.CultureInfo.InvariantCulture));
                Directory.CreateDirectory(hostDirectory);
                volumes[volume] = hostDirectory;
            }
            OciSpec spec;
            try
            {
                spec = OciSpecBuilder.Build(id, request.Spec, request.Pod, request.Image with { Volumes = volumes }, _options.Node, ReadUsers(rootfs));
            }
            catch (ContainerSpecException e)
            {
                throw new ContainerRequestException(e.Message);
            }
            step = "copying the image's content into its volumes";
            foreach (var (volume, hostDirectory) in volumes)
            {
                // A volume that a CRI mount replaced is not in the spec, and gets nothing.
                if (spec.Mounts.Any(m => m.Source == hostDirectory)) ImageVolume.Populate(rootfs, volume, hostDirectory);
            }
            await File.WriteAllBytesAsync(Path.Combine(record.Bundle, "config.json"), JsonSerializer.SerializeToUtf8Bytes(spec, OciJsonContext.Default.OciSpec), cancellationToken);
            if (record.LogPath is { } log) Directory.CreateDirectory(Path.GetDirectoryName(log)!);

            step = "creating the container (berth-shim, runtime create)";
            var prepared = watch.Elapsed.TotalMilliseconds;
            var (shim, initPid) = await ShimClient.StartAsync(_options.ShimBinary, runtime, record, ExitFileOf(id), cancellationToken);
            var shimmed = watch.Elapsed.TotalMilliseconds;
            record = record with { State = ContainerState.Created, Shim = shim, InitPid = initPid, CgroupsPath = spec.Linux?.CgroupsPath ?? "", User = spec.Process.User };
            _store.Update(record);
            LogCreated(_logger, id, watch.Elapsed.TotalMilliseconds, reserved, prepared - reserved, shimmed - prepared);
            Changed?.Invoke(new(ContainerChangeKind.Created, record));
            return record;
        }
        catch (Exception e)
        {
            await RollBackAsync(record);
            if (e is ContainerException) throw;
            throw new ContainerRuntimeException($"CreateContainer failed while {step}: {e.Message}", e);
        }
    }

    public async Task StartAsync(string id, CancellationToken cancellationToken)
    {
        using var held = await LockAsync(id, cancellationToken);
        var record = GetRequired(id);
        if (record.State != ContainerState.Created)
            throw new ContainerStateException($"container {id} is {record.State}, and only a Created container can be started");
        // Taken before: a container that exits at once must not finish before it started.
        var startedAt = Now();
        try
        {
            await RuntimeOf(record).StartAsync(id, cancellationToken);
        }
        catch (ContainerRuntimeException e)
        {
            // A container that failed to start is over: it reports the error, as kubelet expects.
            await RuntimeOf(record).DeleteAsync(id, CancellationToken.None);
            record = record with { State = ContainerState.Exited, FinishedAt = Now(), ExitCode = 128, Reason = "StartError", Message = e.Message };
            _store.Update(record);
            Changed?.Invoke(new(ContainerChangeKind.Exited, record));
            throw;
        }
        // The exit may have been handled while runc start ran; it needed this lock, so it has not: it comes next.
        record = _store.Get(id)!;
        if (record.State == ContainerState.Created)
        {
            record = record with { State = ContainerState.Running, StartedAt = startedAt };
            _store.Update(record);
            Changed?.Invoke(new(ContainerChangeKind.Started, record));
        }
    }

    /// <summary>
    /// The stop signal (the image's, or SIGTERM), up to <paramref name="timeout"/> to exit, then SIGKILL to all the
    /// container's processes. Stopping a container that is not running, or is gone, is fine.
    /// </summary>
    public async Task StopAsync(string id, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // An unknown ID is fine too: kubelet retries stops after crashes and expects idempotence.
        var record = _store.Get(id);
        if (record is null || record.State is not (ContainerState.Running or ContainerState.Created)) return;
        var runtime = RuntimeOf(record);
        var exited = ExitOf(id);
        if (timeout > TimeSpan.Zero && record.State == ContainerState.Running)
        {
            if (await runtime.KillAsync(id, record.StopSignal ?? "SIGTERM", all: false, cancellationToken)
                && await WaitAsync(exited, timeout, cancellationToken)) return;
        }
        await runtime.KillAsync(id, "SIGKILL", all: true, cancellationToken);
        if (record.State == ContainerState.Created) await runtime.DeleteAsync(id, cancellationToken);
        while (!await WaitAsync(exited, TimeSpan.FromSeconds(2), cancellationToken))
        {
            // No exit file is coming if the shim died; what is left is looked at directly.
            record = _store.Get(id);
            if (record is null || record.State is not (ContainerState.Running or ContainerState.Created)) return;
            if (record.Shim is not { } shim || !ProcessStat.IsAlive(shim))
            {
                await MarkExitedAsync(record, 255, "Error", "the container's shim died; its exit status is unknown");
                return;
            }
            await runtime.KillAsync(id, "SIGKILL", all: true, cancellationToken);
        }
    }

    /// <summary>Stops (at once) if needed, then removes every trace. An unknown ID is fine, as kubelet expects.</summary>
    public async Task RemoveAsync(string id, CancellationToken cancellationToken)
    {
        var record = _store.Get(id);
        if (record is null) return;
        if (record.State is ContainerState.Running or ContainerState.Created) await StopAsync(id, TimeSpan.Zero, cancellationToken);
        using var held = await LockAsync(id, cancellationToken);
        record = _store.Get(id);
        if (record is null) return;
        await TearDownAsync(record);
        _store.Delete(record);
        _locks.TryRemove(id, out _);
        Changed?.Invoke(new(ContainerChangeKind.Removed, record));
    }

    public async Task UpdateResourcesAsync(string id, ContainerResources resources, CancellationToken cancellationToken)
    {
        using var held = await LockAsync(id, cancellationToken);
        var record = GetRequired(id);
        if (record.State is not (ContainerState.Running or ContainerState.Created))
            throw new ContainerStateException($"container {id} is {record.State}; only a created or running container can be updated");
        OciResources oci;
        try
        {
            oci = OciSpecBuilder.UpdatedResources(resources, _options.Node);
        }
        catch (ContainerSpecException e)
        {
            throw new ContainerRequestException(e.Message);
        }
        await RuntimeOf(record).UpdateAsync(id, JsonSerializer.SerializeToUtf8Bytes(oci, OciJsonContext.Default.OciResources), cancellationToken);
        _store.Update(record with { Resources = resources });
    }

    /// <summary>Asks the shim to reopen the log file (kubelet rotated it away).</summary>
    public async Task ReopenLogAsync(string id, CancellationToken cancellationToken)
    {
        var record = GetRequired(id);
        if (record.State != ContainerState.Running)
            throw new ContainerStateException($"container {id} is {record.State}; only a running container's log can be reopened");
        await ShimClient.RequestAsync(record.Bundle, "reopen", cancellationToken);
    }

    /// <summary>
    /// Runs a command in the container and collects its output (each stream capped at 16 MiB). On timeout the
    /// command is killed inside the container and <see cref="TimeoutException"/> is thrown.
    /// </summary>
    public async Task<ExecResult> ExecSyncAsync(string id, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var record = GetRequired(id);
        if (record.State != ContainerState.Running)
            throw new ContainerStateException($"container {id} is {record.State}; commands run only in a running container");
        if (command.Count == 0) throw new ContainerRequestException("cmd is required");
        using var slot = TakeExecSlot(id);
        var runtime = RuntimeOf(record);
        var pidFile = Path.Combine(record.Bundle, $"exec-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.pid");
        using var stdout = new CappedBuffer(ExecOutputCap);
        using var stderr = new CappedBuffer(ExecOutputCap);
        using var kill = new CancellationTokenSource();
        var run = runtime.Command(["exec", "--pid-file", pidFile, id, .. command])
            .WithStandardOutputPipe(stdout.Target)
            .WithStandardErrorPipe(stderr.Target)
            .ExecuteAsync(kill.Token, CancellationToken.None);
        try
        {
            var finished = await Task.WhenAny(run.Task, Task.Delay(timeout > TimeSpan.Zero ? timeout : Timeout.InfiniteTimeSpan, cancellationToken));
            if (finished != run.Task)
            {
                // The command itself dies; runc exec then returns on its own. Killing runc alone would orphan the command.
                KillExecProcess(pidFile);
                kill.CancelAfter(TimeSpan.FromSeconds(5));
                try
                {
                    await run.Task;
                }
                catch (OperationCanceledException)
                {
                }
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException($"command {string.Join(' ', command)} timed out after {timeout.TotalSeconds:0.###}s");
            }
            var result = await run.Task;
            return new ExecResult(result.ExitCode, stdout.ToArray(), stderr.ToArray());
        }
        finally
        {
            File.Delete(pidFile);
        }
    }

    private static void KillExecProcess(string pidFile)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid))
            {
                ProcessStat.Kill(pid);
                return;
            }
            Thread.Sleep(20);
        }
    }

    /// <summary>
    /// After a restart: undoes interrupted creates, takes in exits that happened while berthd was down, and marks
    /// containers whose shim is gone (a reboot, or a killed shim) as exited with an unknown status.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        foreach (var record in _store.List())
        {
            if (record.State == ContainerState.Creating)
            {
                LogRecovering(_logger, record.Id);
                await RollBackAsync(record);
            }
            else if (record.State is ContainerState.Running or ContainerState.Created)
            {
                if (File.Exists(ExitFileOf(record.Id))) await HandleExitAsync(record.Id);
                else if (record.Shim is not { } shim || !ProcessStat.IsAlive(shim))
                    await MarkExitedAsync(record, 255, "Error", "the container's shim was gone when berthd started (a reboot or a killed shim)");
            }
        }
        // Exit files of containers that are gone (removed while the watch was down).
        foreach (var file in Directory.EnumerateFiles(_exitDirectory))
        {
            if (_store.Get(Path.GetFileName(file)) is null) File.Delete(file);
        }
        cancellationToken.ThrowIfCancellationRequested();
        _ = WatchShimsAsync(_stopping.Token);
    }

    /// <summary>
    /// A shim that dies before its container (killed by hand, by the OOM killer) leaves a container that nobody
    /// logs, feeds or reaps. As containerd does with a dead shim, the container is killed and reported exited
    /// (137, like SIGKILL) instead of showing Running forever.
    /// </summary>
    private async Task WatchShimsAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(ShimCheckPeriod);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                foreach (var record in _store.List())
                {
                    if (record.State is not (ContainerState.Running or ContainerState.Created) || record.Shim is not { } shim || ProcessStat.IsAlive(shim)) continue;
                    try
                    {
                        await OnShimGoneAsync(record.Id);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        LogExitFailed(_logger, record.Id, e);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task OnShimGoneAsync(string id)
    {
        using var held = await LockAsync(id, CancellationToken.None);
        var record = _store.Get(id);
        // A shim writes the exit file before it leaves: that is an ordinary exit, which the exit watch takes.
        if (record is not { State: ContainerState.Running or ContainerState.Created } || File.Exists(ExitFileOf(id))) return;
        LogShimGone(_logger, id);
        await MarkExitedAsync(record, 137, "Error", "berth-shim exited before the container did (killed?); the container was killed");
    }

    /// <summary>Removes every container of a pod (StopPodSandbox kills them, RemovePodSandbox removes them).</summary>
    public async Task StopPodAsync(string podId, CancellationToken cancellationToken)
    {
        foreach (var record in _store.List().Where(r => r.PodId == podId)) await StopAsync(record.Id, TimeSpan.Zero, cancellationToken);
    }

    public async Task RemovePodAsync(string podId, CancellationToken cancellationToken)
    {
        foreach (var record in _store.List().Where(r => r.PodId == podId)) await RemoveAsync(record.Id, cancellationToken);
    }

    private void OnExitFile(string? name)
    {
        if (name is null || name.EndsWith(".tmp", StringComparison.Ordinal)) return;
        _ = Task.Run(async () =>
        {
            try
            {
                await HandleExitAsync(name);
            }
            catch (Exception e)
            {
                LogExitFailed(_logger, name, e);
            }
        });
    }

    /// <summary>The shim wrote the exit file: the container is Exited (OOMKilled when its cgroup saw an OOM kill).</summary>
    private async Task HandleExitAsync(string id)
    {
        var file = ExitFileOf(id);
        using var held = await LockAsync(id, CancellationToken.None);
        var record = _store.Get(id);
        if (record is null || !File.Exists(file)) return;
        if (record.State is ContainerState.Running or ContainerState.Created)
        {
            var exit = JsonDocument.Parse(await File.ReadAllBytesAsync(file)).RootElement;
            var code = exit.GetProperty("exitCode").GetInt32();
            var oom = OomKilled(record.CgroupsPath);
            record = record with
            {
                State = ContainerState.Exited,
                ExitCode = code,
                FinishedAt = exit.GetProperty("exitedAt").GetInt64(),
                Reason = oom ? "OOMKilled" : code == 0 ? "Completed" : "Error",
            };
            // The runtime's state and the cgroup go now; the rootfs stays for RemoveContainer.
            await RuntimeOf(record).DeleteAsync(id, CancellationToken.None);
            _store.Update(record);
            Changed?.Invoke(new(ContainerChangeKind.Exited, record));
        }
        File.Delete(file);
        ExitOf(id).TrySetResult();
    }

    private async Task MarkExitedAsync(ContainerRecord record, int code, string reason, string message)
    {
        await RuntimeOf(record).DeleteAsync(record.Id, CancellationToken.None);
        record = record with { State = ContainerState.Exited, ExitCode = code, FinishedAt = Now(), Reason = reason, Message = message };
        _store.Update(record);
        Changed?.Invoke(new(ContainerChangeKind.Exited, record));
        ExitOf(record.Id).TrySetResult();
    }

    /// <summary>v1: memory.oom_control's oom_kill count; v2: memory.events'.</summary>
    private bool OomKilled(string cgroupsPath)
    {
        if (cgroupsPath.Length == 0) return false;
        var (file, key) = _options.Node.CgroupV2
            ? ($"/sys/fs/cgroup{cgroupsPath}/memory.events", "oom_kill ")
            : ($"/sys/fs/cgroup/memory{cgroupsPath}/memory.oom_control", "oom_kill ");
        try
        {
            return File.ReadLines(file).Any(l => l.StartsWith(key, StringComparison.Ordinal) && l[key.Length..].Trim() != "0");
        }
        catch (IOException)
        {
            return false;
        }
    }

    private async Task RollBackAsync(ContainerRecord record)
    {
        try
        {
            await TearDownAsync(record);
            _store.Delete(record);
        }
        catch (Exception e)
        {
            // Left as a Creating record, so the next start retries the cleanup.
            LogRollbackFailed(_logger, record.Id, e);
        }
    }

    /// <summary>Shim, runtime state, rootfs mount, bundle and layers; each step idempotent.</summary>
    private async Task TearDownAsync(ContainerRecord record)
    {
        if (record.State == ContainerState.Exited)
        {
            // The exit was handled: the runtime's state is deleted and the shim has gone or is going.
            if (record.Shim is { } shim && ProcessStat.IsAlive(shim)) ProcessStat.Kill(shim.Pid);
        }
        else
        {
            // A shim started just before a crash has no PID on record yet: find it by its command line.
            foreach (var pid in ShimClient.Find(_options.ShimBinary, record.Id)) ProcessStat.Kill(pid);
            await RuntimeOf(record).DeleteAsync(record.Id, CancellationToken.None);
        }
        var rootfs = Path.Combine(record.Bundle, "rootfs");
        ContainerRootfs.Unmount(rootfs);
        // By directory descriptors: the writable layer is the container's to shape (any depth, any links), and a
        // rootfs still mounted is refused, never emptied through the mount.
        Berth.Native.FileTree.Remove(record.Bundle);
        Berth.Native.FileTree.Remove(record.Directory);
        File.Delete(ExitFileOf(record.Id));
    }

    private static UserDatabase ReadUsers(string rootfs)
    {
        static string? Read(string path)
        {
            // A link could point out of the rootfs, to the node's own files.
            var info = new FileInfo(path);
            return info.Exists && info.LinkTarget is null && info.Length < 4 * 1024 * 1024 ? File.ReadAllText(path) : null;
        }

        return UserDatabase.Parse(Read(Path.Combine(rootfs, "etc", "passwd")), Read(Path.Combine(rootfs, "etc", "group")));
    }

    private OciRuntime RuntimeOf(ContainerRecord record) =>
        _runtimes.TryGetValue(record.RuntimeHandler, out var runtime)
            ? runtime
            : throw new ContainerRuntimeException($"container {record.Id}: its runtime handler '{record.RuntimeHandler}' is no longer configured");

    private string ExitFileOf(string id) => Path.Combine(_exitDirectory, id);

    private TaskCompletionSource ExitOf(string id) => _exits.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    private static async Task<bool> WaitAsync(TaskCompletionSource exited, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            // Beyond what a timer can hold (49 days), a wait is as good as endless.
            await exited.Task.WaitAsync(timeout.TotalDays > 49 ? Timeout.InfiniteTimeSpan : timeout, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private async Task<Releaser> LockAsync(string id, CancellationToken cancellationToken)
    {
        var semaphore = _locks.GetOrAdd(id, _ => new SemaphoreSlim(1, 1));
        await semaphore.WaitAsync(cancellationToken);
        return new Releaser(semaphore);
    }

    private readonly struct Releaser(SemaphoreSlim semaphore) : IDisposable
    {
        public void Dispose() => semaphore.Release();
    }

    private static long Now() => (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100;

    public void Dispose()
    {
        _stopping.Cancel();
        _exitWatcher.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "container {Id} created in {TotalMs:F1} ms (record {RecordMs:F1}, rootfs and spec {PrepareMs:F1}, shim and runtime create {ShimMs:F1})")]
    private static partial void LogCreated(ILogger logger, string id, double totalMs, double recordMs, double prepareMs, double shimMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "container {Id}: its shim is gone while the container ran; killing the container and reporting it exited")]
    private static partial void LogShimGone(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "container {Id}: undoing what an interrupted CreateContainer left")]
    private static partial void LogRecovering(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Error, Message = "container {Id}: rollback failed; it will be retried at the next start")]
    private static partial void LogRollbackFailed(ILogger logger, string id, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "container {Id}: handling its exit failed")]
    private static partial void LogExitFailed(ILogger logger, string id, Exception exception);
}
