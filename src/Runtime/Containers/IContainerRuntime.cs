using Berth.Runtime.Spec;

namespace Berth.Runtime.Containers;

/// <summary>A client's streams for an exec or attach; absent ones are null. Resizes arrive as (columns, rows).</summary>
public sealed record InteractiveStreams(Stream? Stdin, Stream? Stdout, Stream? Stderr, bool Tty, IAsyncEnumerable<(ushort Columns, ushort Rows)>? Resize);

/// <summary>What ExecSync returns.</summary>
public sealed record ExecResult(int ExitCode, byte[] Stdout, byte[] Stderr);

/// <summary>
/// A container the runtime created: its keeper (the shim; none yet for one a restore will make), its init process (not
/// started yet), and the cgroup v2 directory the init is in ("" when unknown): a runtime may nest it below the cgroups
/// path it was given (crun puts a systemd scope's processes in <c>&lt;scope&gt;/container</c>).
/// </summary>
public sealed record CreatedContainer(ShimProcess? Shim, int InitPid, string CgroupDirectory = "");

/// <summary>
/// What the container lifecycle asks of one runtime handler: an OCI runtime (runc, crun) and the shim that keeps
/// each of its containers. Failures are <see cref="ContainerException"/>s. The lifecycle owns state, records and
/// events; an implementation owns processes, sockets and command lines, and keeps no state of its own.
/// </summary>
public interface IContainerRuntime
{
    /// <summary>The runtime binary, as messages name it.</summary>
    string Binary { get; }

    /// <summary>The optional features the runtime has (mount options such as "rro", namespaces such as "user").</summary>
    Task<OciRuntimeFeatures> FeaturesAsync();

    /// <summary>
    /// Creates the container from its bundle (config.json and the mounted rootfs) through a new shim, which will
    /// write <paramref name="exitFile"/> when the container's init exits.
    /// </summary>
    Task<CreatedContainer> CreateAsync(ContainerRecord record, string exitFile, CancellationToken cancellationToken);

    Task StartAsync(string id, CancellationToken cancellationToken);

    /// <summary>Why this handler cannot checkpoint (no CRIU, a kernel CRIU cannot work on, a runtime built without it), or null.</summary>
    Task<string?> CheckpointUnsupportedAsync();

    /// <summary>Dumps the running container's processes with CRIU into <paramref name="imagePath"/>, leaving them running.</summary>
    Task CheckpointAsync(string id, string imagePath, string workPath, CancellationToken cancellationToken);

    /// <summary>
    /// Brings a created container's processes back from CRIU images through a new shim, which then keeps them as it
    /// keeps a created container; they run when this returns (a restore both creates and starts).
    /// </summary>
    Task<CreatedContainer> RestoreAsync(ContainerRecord record, string exitFile, string imagePath, string workPath, CancellationToken cancellationToken);

    /// <summary>Sends a signal, with <paramref name="all"/> to every process of the container; false when nothing was left to signal.</summary>
    Task<bool> KillAsync(string id, string signal, bool all, CancellationToken cancellationToken);

    /// <summary>
    /// Whether <paramref name="signal"/> sent to the container's init now would be lost: the init is PID 1 of its own PID
    /// namespace, and the kernel drops a signal it has no handler for (only SIGKILL and SIGSTOP get through).
    /// </summary>
    bool InitWouldDropSignal(ContainerRecord record, int signal);

    /// <summary>Removes the runtime's state and the cgroup, killing what is left; a missing container is fine.</summary>
    Task DeleteAsync(string id, CancellationToken cancellationToken);

    Task UpdateAsync(string id, OciResources resources, CancellationToken cancellationToken);

    /// <summary>Runs a command and collects its output; on timeout the command is killed and <see cref="TimeoutException"/> thrown.</summary>
    Task<ExecResult> ExecSyncAsync(ContainerRecord record, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Runs a command with a client's streams; returns its exit code. Cancellation kills the command.</summary>
    Task<int> ExecAsync(ContainerRecord record, IReadOnlyList<string> command, InteractiveStreams io, CancellationToken cancellationToken);

    /// <summary>Relays the container's stdio to a client until its output ends or the client goes.</summary>
    Task AttachAsync(ContainerRecord record, InteractiveStreams io, CancellationToken cancellationToken);

    /// <summary>Has the shim reopen the container's log file (kubelet rotated it away).</summary>
    Task ReopenLogAsync(ContainerRecord record, CancellationToken cancellationToken);

    bool IsShimAlive(ShimProcess shim);

    /// <summary>Calls <paramref name="gone"/> once when the shim exits (at once if it has); the watch ends with that call.</summary>
    void WatchShim(ShimProcess shim, Action gone);

    /// <summary>
    /// Kills the container's shim: <paramref name="known"/> if it still runs, else every shim of the container found
    /// by its command line (one started just before a crash has no PID on record).
    /// </summary>
    void KillShim(string id, ShimProcess? known);
}
