using Berth.Native;
using Berth.Records;
using Berth.Runtime.Spec;
using Microsoft.Extensions.Logging;

namespace Berth.Runtime.Containers;

/// <summary>An OCI runtime a RuntimeClass handler names.</summary>
public sealed record RuntimeHandlerSettings(string Binary);

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

    /// <summary>Unpacks checkpoint archives and rootfs diffs with a layer's care; without one, no checkpoint is restored.</summary>
    public Checkpoints.IArchiveUnpacker? ArchiveUnpacker { get; init; }

    /// <summary>Where CDI specs are read from (<c>cdi.spec_dirs</c>), a later directory's devices winning; none reads none.</summary>
    public IReadOnlyList<string> CdiSpecDirs { get; init; } = [];

    /// <summary>The longest shim socket path: the bundle is &lt;bundles&gt;/&lt;64 hex&gt;.</summary>
    public int LongestSocketPath => Path.Combine(BundleDirectory, new string('0', 64), ShimProtocol.ShimFiles.ControlSocket).Length;

    public string ExitDirectory => Path.Combine(StateDirectory, "exits");
}

/// <summary>
/// Containers, as CriServer asks for them. The work is done by one part per concern, composed here:
/// <see cref="ContainerCreation"/>, <see cref="ContainerLifecycle"/>, <see cref="ExitMonitor"/> and
/// <see cref="ContainerInteractive"/>, over the records of <see cref="ContainerTable"/> and the runtime handlers'
/// <see cref="IContainerRuntime"/>.
/// </summary>
public sealed class ContainerManager : IDisposable
{
    /// <summary>Execs (streaming and ExecSync) one container may have running at once.</summary>
    public const int MaxExecsPerContainer = 64;

    private readonly ContainerTable _table;
    private readonly RuntimeHandlers _handlers;
    private readonly ContainerCreation _creation;
    private readonly ContainerLifecycle _lifecycle;
    private readonly ExitMonitor _exits;
    private readonly ContainerInteractive _interactive;
    private readonly ContainerCheckpoints _checkpoints;
    private readonly ProcessExitWatcher? _shimExits;
    // One inotify instance for the runtime's watches: cgroups' memory.events and the CDI spec directories.
    private readonly FileChangeWatcher _cgroupEvents = new();

    public ContainerManager(ContainerOptions options, ILogger<ContainerManager> logger)
        : this(options, ShimmedRuntimes(options, out var shimExits), new OverlayRootfs(), logger) => _shimExits = shimExits;

    internal ContainerManager(ContainerOptions options, IReadOnlyDictionary<string, IContainerRuntime> runtimes, IRootfsMounter rootfs, ILogger logger)
    {
        if (options.LongestSocketPath > 107)
            throw new ContainerRuntimeException($"{options.BundleDirectory} is too long for the shim's unix sockets; shorten the state directory");
        Directory.CreateDirectory(options.BundleDirectory);
        File.SetUnixFileMode(options.BundleDirectory, ContainerCreation.SearchableDirectory);
        _table = new ContainerTable(new RecordStore<ContainerRecord>(
            Path.Combine(options.DataDirectory, "records"), ContainerJsonContext.Default.ContainerRecord, r => r.Id, r => r.NameKey, "container", logger));
        _handlers = new RuntimeHandlers(runtimes, options.Node);
        var teardown = new ContainerTeardown(_handlers, rootfs, _table, options.ExitDirectory, logger);
        _exits = new ExitMonitor(_table, _handlers, teardown, options.ExitDirectory, options.Node.CgroupV2, _cgroupEvents, logger);
        Devices = new Cdi.CdiRegistry(options.CdiSpecDirs, _cgroupEvents, logger);
        _creation = new ContainerCreation(options, _handlers, rootfs, _table, teardown, Devices, logger);
        _lifecycle = new ContainerLifecycle(_table, _handlers, teardown, _exits, options.Node);
        _interactive = new ContainerInteractive(_table, _handlers);
        _checkpoints = new ContainerCheckpoints(options, _table, _handlers, logger);
    }

    private static Dictionary<string, IContainerRuntime> ShimmedRuntimes(ContainerOptions options, out ProcessExitWatcher shimExits)
    {
        var exits = shimExits = new ProcessExitWatcher();
        return options.Handlers.ToDictionary(
            h => h.Key,
            h => (IContainerRuntime)new OciShimRuntime(
                new OciRuntime(h.Value.Binary, Path.Combine(options.StateDirectory, "runtime", h.Key.Length == 0 ? "default" : h.Key), options.Node.SystemdCgroup),
                options.ShimBinary, exits),
            StringComparer.Ordinal);
    }

    /// <summary>Raised after a container changes state (created, started, exited, removed), in order per container.</summary>
    public event Action<ContainerChange>? Changed
    {
        add => _table.Changed += value;
        remove => _table.Changed -= value;
    }

    /// <summary>Changes each new container's spec before the runtime creates it (NRI); none by default.</summary>
    public IContainerSpecAdjuster? SpecAdjuster
    {
        get => _creation.Adjuster;
        set => _creation.Adjuster = value;
    }

    /// <summary>The node's CDI devices, which CreateContainer resolves against.</summary>
    public Cdi.CdiRegistry Devices { get; }

    public IReadOnlyList<ContainerRecord> List() => _table.List();

    public ContainerRecord? Get(string id) => _table.Get(id);

    /// <summary>By ID, else by a unique prefix of one; null when none or several match.</summary>
    public ContainerRecord? Find(string id) => _table.Find(id);

    /// <summary>The full ID of <see cref="Find"/>'s container, or <paramref name="id"/> unchanged, to be reported as not found.</summary>
    public string ResolveId(string id) => Find(id)?.Id ?? id;

    /// <summary>The container's cgroup directory below the cgroup root (records of older berthds know only the cgroups path).</summary>
    public static string CgroupDirectoryOf(ContainerRecord record) =>
        record.CgroupDirectory.Length > 0 ? record.CgroupDirectory : Cgroups.CgroupPaths.Resolve(record.CgroupsPath);

    /// <summary>The container's writable layer (the overlay's upper dir), whose usage ContainerStats reports.</summary>
    public static string WritableLayerOf(ContainerRecord record) => Path.Combine(record.Directory, "upper");

    /// <summary>The overlay's work dir beside the writable layer.</summary>
    public static string WorkDirectoryOf(ContainerRecord record) => Path.Combine(record.Directory, "work");

    /// <summary>The features of a configured handler ("" is the default one); null for an unknown name.</summary>
    public Task<HandlerFeatures?> FeaturesAsync(string handler) => _handlers.FeaturesAsync(handler);

    public Task<ContainerRecord> CreateAsync(ContainerRequest request, PodSettings pod, ImageSettings image, CancellationToken cancellationToken) =>
        _creation.CreateAsync(request, pod, image, cancellationToken);

    public Task StartAsync(string id, CancellationToken cancellationToken) => _lifecycle.StartAsync(id, cancellationToken);

    /// <summary>The stop signal, up to <paramref name="timeout"/> to exit, then SIGKILL. Not running, or gone, is fine.</summary>
    public Task StopAsync(string id, TimeSpan timeout, CancellationToken cancellationToken) => _lifecycle.StopAsync(id, timeout, cancellationToken);

    /// <summary>Writes a running container's checkpoint archive to <paramref name="location"/>; it runs on. Null timeout: none.</summary>
    public Task CheckpointAsync(string id, string location, TimeSpan? timeout, CancellationToken cancellationToken) =>
        _checkpoints.CheckpointAsync(id, location, timeout, cancellationToken);

    /// <summary>Unpacks a checkpoint archive for a CreateContainer (<see cref="ContainerRequest.RestoreFrom"/>) and says what it was.</summary>
    public Task<PreparedRestore> PrepareRestoreAsync(string archive, CancellationToken cancellationToken) =>
        _checkpoints.PrepareRestoreAsync(archive, cancellationToken);

    /// <summary>A prepared restore no container took.</summary>
    public static void DiscardRestore(PreparedRestore restore) => ContainerCheckpoints.Discard(restore);

    /// <summary>Stops (at once) if needed, then removes every trace. An unknown ID is fine, as kubelet expects.</summary>
    public Task RemoveAsync(string id, CancellationToken cancellationToken) => _lifecycle.RemoveAsync(id, cancellationToken);

    public Task UpdateResourcesAsync(string id, ContainerResources resources, CancellationToken cancellationToken) =>
        _lifecycle.UpdateResourcesAsync(id, resources, cancellationToken);

    public Task ReopenLogAsync(string id, CancellationToken cancellationToken) => _lifecycle.ReopenLogAsync(id, cancellationToken);

    /// <summary>Kills every container of a pod (StopPodSandbox).</summary>
    public async Task StopPodAsync(string podId, CancellationToken cancellationToken)
    {
        foreach (var record in _table.List().Where(r => r.PodId == podId)) await _lifecycle.StopAsync(record.Id, TimeSpan.Zero, cancellationToken);
    }

    /// <summary>Removes every container of a pod (RemovePodSandbox).</summary>
    public async Task RemovePodAsync(string podId, CancellationToken cancellationToken)
    {
        foreach (var record in _table.List().Where(r => r.PodId == podId)) await _lifecycle.RemoveAsync(record.Id, cancellationToken);
    }

    /// <summary>Checks that a container can take an exec or attach now (it exists and runs).</summary>
    public ContainerRecord RequireRunning(string id) => _interactive.RequireRunning(id);

    /// <summary>Runs a command and collects its output (each stream capped at 16 MiB); <see cref="TimeoutException"/> on timeout.</summary>
    public Task<ExecResult> ExecSyncAsync(string id, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken) =>
        _interactive.ExecSyncAsync(id, command, timeout, cancellationToken);

    /// <summary>Runs a command with a client's streams; cancellation (the client is gone) kills the command inside the container.</summary>
    public Task<int> ExecAsync(string id, IReadOnlyList<string> command, InteractiveStreams io, CancellationToken cancellationToken) =>
        _interactive.ExecAsync(id, command, io, cancellationToken);

    /// <summary>Attaches a client to the container's stdio; the container is left alone when either side goes.</summary>
    public Task AttachAsync(string id, InteractiveStreams io, CancellationToken cancellationToken) => _interactive.AttachAsync(id, io, cancellationToken);

    /// <summary>After a restart: undoes interrupted creates and takes in what happened while berthd was down.</summary>
    public Task RecoverAsync(CancellationToken cancellationToken)
    {
        _checkpoints.RemoveLeftovers();
        return _exits.RecoverAsync(cancellationToken);
    }

    public void Dispose()
    {
        _exits.Dispose();
        _shimExits?.Dispose();
        Devices.Dispose();
        _cgroupEvents.Dispose();
    }
}
