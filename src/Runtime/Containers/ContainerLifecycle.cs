using Berth.Runtime.Spec;

namespace Berth.Runtime.Containers;

/// <summary>
/// A created container's state changes: start, stop, remove, and what changes it in place (resources, its log file).
/// Stop and remove are idempotent, as kubelet retries them after crashes: an unknown or finished container is fine.
/// </summary>
internal sealed class ContainerLifecycle(ContainerTable table, RuntimeHandlers handlers, ContainerTeardown teardown, ExitMonitor exits, NodeSettings node)
{
    /// <summary>How often a stop that saw no exit looks at the shim and signals again.</summary>
    private static readonly TimeSpan StopRecheck = TimeSpan.FromSeconds(2);

    /// <summary>How often a stop looks for the init's signal handler: soon at first, then every 100 ms.</summary>
    private static readonly TimeSpan HandlerPollFirst = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan HandlerPollMax = TimeSpan.FromMilliseconds(100);

    public async Task StartAsync(string id, CancellationToken cancellationToken)
    {
        using var held = await table.LockAsync(id, cancellationToken);
        var record = table.GetRequired(id);
        if (record.State != ContainerState.Created)
            throw new ContainerStateException($"container {id} is {record.State}, and only a Created container can be started");
        var runtime = handlers.Of(record);
        // Taken before: a container that exits at once must not finish before it started.
        var startedAt = ContainerTable.Now();
        if (record.RestoreFrom is { } checkpoint)
        {
            await RestoreAsync(record, runtime, checkpoint, startedAt, cancellationToken);
            return;
        }
        try
        {
            await runtime.StartAsync(id, cancellationToken);
        }
        catch (ContainerRuntimeException e)
        {
            // A container that failed to start is over: it reports the error, as kubelet expects.
            await runtime.DeleteAsync(id, CancellationToken.None);
            table.Commit(record with { State = ContainerState.Exited, FinishedAt = ContainerTable.Now(), ExitCode = 128, Reason = "StartError", Message = e.Message },
                ContainerChangeKind.Exited);
            throw;
        }
        // The exit may have been handled while runc start ran; it needed this lock, so it has not: it comes next.
        record = table.GetRequired(id);
        if (record.State == ContainerState.Created) table.Commit(record with { State = ContainerState.Running, StartedAt = startedAt }, ContainerChangeKind.Started);
    }

    /// <summary>
    /// A container from a checkpoint starts by being restored: CRIU brings its processes back through a new shim, which
    /// keeps them from then on as it keeps any container. A restore that fails leaves the container exited with the
    /// error, as a failed start does.
    /// </summary>
    private async Task RestoreAsync(ContainerRecord record, IContainerRuntime runtime, string checkpoint, long startedAt, CancellationToken cancellationToken)
    {
        CreatedContainer created;
        try
        {
            created = await runtime.RestoreAsync(record, teardown.ExitFileOf(record.Id),
                Path.Combine(checkpoint, Checkpoints.CheckpointLayout.CheckpointDirectory), Path.Combine(checkpoint, "work"), cancellationToken);
        }
        catch (ContainerRuntimeException e)
        {
            await runtime.DeleteAsync(record.Id, CancellationToken.None);
            table.Commit(record with { State = ContainerState.Exited, FinishedAt = ContainerTable.Now(), ExitCode = 128, Reason = "StartError", Message = e.Message, RestoreFrom = null },
                ContainerChangeKind.Exited);
            // What fails here is the checkpoint's to give (its images, or a node unlike the one it was taken on).
            throw new ContainerPreconditionException($"container {record.Id} could not be restored from its checkpoint: {e.Message}");
        }
        record = record with
        {
            State = ContainerState.Running, StartedAt = startedAt, Shim = created.Shim, InitPid = created.InitPid, RestoreFrom = null,
            CgroupDirectory = created.CgroupDirectory.Length > 0 ? created.CgroupDirectory : record.CgroupDirectory,
        };
        table.Commit(record, ContainerChangeKind.Started);
        exits.WatchRestored(record);
        Berth.Native.FileTree.Remove(checkpoint);
    }

    /// <summary>
    /// The stop signal (the image's, or SIGTERM), up to <paramref name="timeout"/> to exit, then SIGKILL to all the
    /// container's processes, until its exit is handled or its shim is found gone.
    /// </summary>
    public async Task StopAsync(string id, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var record = table.Get(id);
        if (record is null || record.State is not (ContainerState.Running or ContainerState.Created)) return;
        if (record.RestoreFrom is not null)
        {
            // Not restored yet: no process, no shim, nothing in the runtime.
            await exits.MarkExitedAsync(record with { RestoreFrom = null }, 255, "Error", "stopped before it was restored from its checkpoint");
            return;
        }
        var runtime = handlers.Of(record);
        var exited = table.ExitOf(id);
        if (timeout > TimeSpan.Zero && record.State == ContainerState.Running
            && await StopGracefullyAsync(record, runtime, exited, timeout, cancellationToken)) return;
        await runtime.KillAsync(id, "SIGKILL", all: true, cancellationToken);
        if (record.State == ContainerState.Created) await runtime.DeleteAsync(id, cancellationToken);
        while (!await WaitAsync(exited, StopRecheck, cancellationToken))
        {
            // No exit file is coming if the shim died; what is left is looked at directly.
            record = table.Get(id);
            if (record is null || record.State is not (ContainerState.Running or ContainerState.Created)) return;
            if (record.Shim is not { } shim || !runtime.IsShimAlive(shim))
            {
                await exits.MarkExitedAsync(record, 255, "Error", "the container's shim died; its exit status is unknown");
                return;
            }
            await runtime.KillAsync(id, "SIGKILL", all: true, cancellationToken);
        }
    }

    /// <summary>
    /// Sends the stop signal once, so that it arrives, and waits out the grace period for the exit. A PID namespace's init
    /// that has no handler for the signal yet would lose it (the kernel drops it), and a stop right after start often
    /// comes before the init has installed one (<c>top</c> takes a few milliseconds): the signal then waits for the
    /// handler, and is never sent twice to a process that would act on each.
    /// </summary>
    private static async Task<bool> StopGracefullyAsync(
        ContainerRecord record, IContainerRuntime runtime, TaskCompletionSource exited, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var grace = System.Diagnostics.Stopwatch.StartNew();
        var name = record.StopSignal ?? "SIGTERM";
        var signal = Signals.TryParse(name, out var number) ? Signals.RuntimeArgument(number) : name;
        var poll = HandlerPollFirst;
        while (number > 0 && runtime.InitWouldDropSignal(record, number))
        {
            var left = timeout - grace.Elapsed;
            if (left <= TimeSpan.Zero) return false;
            if (await WaitAsync(exited, poll < left ? poll : left, cancellationToken)) return true;
            poll = poll * 2 < HandlerPollMax ? poll * 2 : HandlerPollMax;
        }
        if (!await runtime.KillAsync(record.Id, signal, all: false, cancellationToken)) return false;
        var rest = timeout - grace.Elapsed;
        return await WaitAsync(exited, rest > TimeSpan.Zero ? rest : TimeSpan.Zero, cancellationToken);
    }

    /// <summary>Stops (at once) if needed, then removes every trace.</summary>
    public async Task RemoveAsync(string id, CancellationToken cancellationToken)
    {
        var record = table.Get(id);
        if (record is null) return;
        if (record.State is ContainerState.Running or ContainerState.Created) await StopAsync(id, TimeSpan.Zero, cancellationToken);
        using var held = await table.LockAsync(id, cancellationToken);
        record = table.Get(id);
        if (record is null) return;
        await teardown.TearDownAsync(record);
        table.Delete(record, announce: true);
    }

    public async Task UpdateResourcesAsync(string id, ContainerResources resources, CancellationToken cancellationToken)
    {
        using var held = await table.LockAsync(id, cancellationToken);
        var record = table.GetRequired(id);
        if (record.State is not (ContainerState.Running or ContainerState.Created))
            throw new ContainerStateException($"container {id} is {record.State}; only a created or running container can be updated");
        OciResources oci;
        try
        {
            oci = OciSpecBuilder.UpdatedResources(resources, node);
        }
        catch (ContainerSpecException e)
        {
            throw new ContainerRequestException(e.Message);
        }
        await handlers.Of(record).UpdateAsync(id, oci, cancellationToken);
        table.Update(record with { Resources = resources });
    }

    /// <summary>Has the shim reopen the log file (kubelet rotated it away).</summary>
    public async Task ReopenLogAsync(string id, CancellationToken cancellationToken)
    {
        var record = table.GetRequired(id);
        if (record.State != ContainerState.Running)
            throw new ContainerStateException($"container {id} is {record.State}; only a running container's log can be reopened");
        await handlers.Of(record).ReopenLogAsync(record, cancellationToken);
    }

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
}
