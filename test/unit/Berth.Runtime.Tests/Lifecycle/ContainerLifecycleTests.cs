using Berth.Runtime.Containers;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>Start, stop, remove and update against a fake runtime: each branch, idempotence, and the order of events.</summary>
public sealed class ContainerLifecycleTests : IDisposable
{
    private readonly LifecycleBed _bed = new();

    public void Dispose() => _bed.Dispose();

    [Fact]
    public async Task Start_runs_a_created_container_once()
    {
        var record = await _bed.RunningAsync();
        Assert.Equal(ContainerState.Running, record.State);
        Assert.True(record.StartedAt > 0);
        var e = await Assert.ThrowsAsync<ContainerStateException>(() => _bed.Manager.StartAsync(record.Id, CancellationToken.None));
        Assert.Contains("only a Created container can be started", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ContainerNotFoundException>(() => _bed.Manager.StartAsync("nope", CancellationToken.None));
    }

    [Fact]
    public async Task A_failed_start_leaves_an_exited_container_with_the_error()
    {
        var record = await _bed.CreateAsync();
        _bed.Runtime.Failures["start"] = new ContainerRuntimeException("exec: /bin/app: no such file");
        await Assert.ThrowsAsync<ContainerRuntimeException>(() => _bed.Manager.StartAsync(record.Id, CancellationToken.None));
        var exited = _bed.Manager.Get(record.Id)!;
        Assert.Equal((ContainerState.Exited, 128, "StartError", "exec: /bin/app: no such file"), (exited.State, exited.ExitCode, exited.Reason, exited.Message));
        Assert.Equal(["create", "start", "delete"], _bed.Runtime.CallsFor(record.Id));
        Assert.Equal(["Created:Created", "Exited:Exited"], _bed.EventsOf(record.Id));
    }

    [Fact]
    public async Task Stop_sends_the_stop_signal_and_takes_the_exit()
    {
        var record = await _bed.CreateAsync(LifecycleBed.Request() with { StopSignal = "SIGQUIT" });
        await _bed.Manager.StartAsync(record.Id, CancellationToken.None);
        _bed.Runtime.IgnoredSignals.Remove("SIGQUIT");
        await _bed.Manager.StopAsync(record.Id, TimeSpan.FromSeconds(30), CancellationToken.None);
        var exited = _bed.Manager.Get(record.Id)!;
        Assert.Equal((ContainerState.Exited, 143, "Error"), (exited.State, exited.ExitCode, exited.Reason));
        Assert.Equal(1_700_000_000_000_000_000, exited.FinishedAt);
        Assert.Equal(["create", "start", "kill SIGQUIT", "delete"], _bed.Runtime.CallsFor(record.Id));
        Assert.Equal(["Created:Created", "Started:Running", "Exited:Exited"], _bed.EventsOf(record.Id));
        Assert.False(File.Exists(_bed.ExitFileOf(record.Id)));
    }

    [Fact]
    public async Task A_stop_signal_that_is_ignored_is_followed_by_SIGKILL_to_all()
    {
        var record = await _bed.RunningAsync();
        _bed.Runtime.IgnoredSignals.Add("SIGTERM");
        await _bed.Manager.StopAsync(record.Id, TimeSpan.FromMilliseconds(100), CancellationToken.None);
        Assert.Equal(137, _bed.Manager.Get(record.Id)!.ExitCode);
        Assert.Equal(["create", "start", "kill SIGTERM", "kill SIGKILL all", "delete"], _bed.Runtime.CallsFor(record.Id));
    }

    [Fact]
    public async Task Stopping_a_created_container_kills_and_deletes_it()
    {
        var record = await _bed.CreateAsync();
        await _bed.Manager.StopAsync(record.Id, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(ContainerState.Exited, _bed.Manager.Get(record.Id)!.State);
        Assert.Equal(["create", "kill SIGKILL all", "delete"], _bed.Runtime.CallsFor(record.Id).Take(3));
    }

    [Fact]
    public async Task Stop_is_idempotent()
    {
        await _bed.Manager.StopAsync("unknown", TimeSpan.FromSeconds(1), CancellationToken.None);
        var record = await _bed.RunningAsync();
        await _bed.Manager.StopAsync(record.Id, TimeSpan.Zero, CancellationToken.None);
        var calls = _bed.Runtime.Calls.Count;
        await _bed.Manager.StopAsync(record.Id, TimeSpan.Zero, CancellationToken.None);
        await _bed.Manager.StopAsync(record.Id[..10], TimeSpan.Zero, CancellationToken.None);
        Assert.Equal(calls, _bed.Runtime.Calls.Count);
        Assert.Equal(["Created:Created", "Started:Running", "Exited:Exited"], _bed.EventsOf(record.Id));
    }

    [Fact]
    public async Task A_stop_whose_shim_died_reports_an_unknown_exit()
    {
        var record = await _bed.RunningAsync();
        _bed.Runtime.NobodyExits = true;
        // The shim dies without its watch firing first: the stop's own recheck finds it gone.
        _bed.Runtime.WatchShim(record.Shim!, () => { });
        var stop = _bed.Manager.StopAsync(record.Id, TimeSpan.Zero, CancellationToken.None);
        _bed.Runtime.ShimGone(record.Shim!.Pid);
        await stop;
        var exited = await _bed.WaitForAsync(record.Id, r => r?.State == ContainerState.Exited);
        Assert.Equal(ContainerState.Exited, exited!.State);
        Assert.True(exited.ExitCode is 255 or 137, $"exit code {exited.ExitCode}");
    }

    [Fact]
    public async Task Remove_stops_then_removes_every_trace()
    {
        var record = await _bed.RunningAsync();
        await _bed.Manager.RemoveAsync(record.Id, CancellationToken.None);
        _bed.AssertNoTraceOf(record);
        Assert.Equal(["Created:Created", "Started:Running", "Exited:Exited", "Removed:Exited"], _bed.EventsOf(record.Id));
        Assert.Contains("kill SIGKILL all", _bed.Runtime.CallsFor(record.Id));
        Assert.Contains(Path.Combine(record.Bundle, "rootfs"), _bed.Rootfs.Unmounted);
    }

    [Fact]
    public async Task Remove_is_idempotent()
    {
        await _bed.Manager.RemoveAsync("unknown", CancellationToken.None);
        var record = await _bed.CreateAsync();
        await _bed.Manager.RemoveAsync(record.Id, CancellationToken.None);
        await _bed.Manager.RemoveAsync(record.Id, CancellationToken.None);
        Assert.Single(_bed.EventsOf(record.Id), "Removed:Exited");
    }

    [Fact]
    public async Task A_pod_stops_and_removes_all_its_containers()
    {
        var one = await _bed.RunningAsync("one");
        var two = await _bed.CreateAsync(LifecycleBed.Request("two"));
        await _bed.Manager.StopPodAsync(LifecycleBed.Pod.Id, CancellationToken.None);
        Assert.All(_bed.Manager.List(), r => Assert.Equal(ContainerState.Exited, r.State));
        await _bed.Manager.RemovePodAsync(LifecycleBed.Pod.Id, CancellationToken.None);
        Assert.Empty(_bed.Manager.List());
        _bed.AssertNoTraceOf(one);
        _bed.AssertNoTraceOf(two);
    }

    [Fact]
    public async Task Update_reaches_the_runtime_and_the_record_only_while_the_container_lives()
    {
        var record = await _bed.RunningAsync();
        await _bed.Manager.UpdateResourcesAsync(record.Id, new ContainerResources { MemoryLimitInBytes = 64 << 20 }, CancellationToken.None);
        Assert.Equal(64 << 20, _bed.Manager.Get(record.Id)!.Resources.MemoryLimitInBytes);
        await Assert.ThrowsAsync<ContainerRequestException>(() =>
            _bed.Manager.UpdateResourcesAsync(record.Id, new ContainerResources { CpuShares = 1 }, CancellationToken.None));
        await _bed.Manager.StopAsync(record.Id, TimeSpan.Zero, CancellationToken.None);
        await Assert.ThrowsAsync<ContainerStateException>(() =>
            _bed.Manager.UpdateResourcesAsync(record.Id, new ContainerResources(), CancellationToken.None));
        Assert.Single(_bed.Runtime.CallsFor(record.Id), "update");
    }

    [Fact]
    public async Task Exec_attach_and_log_reopen_need_a_running_container_and_execs_are_bounded()
    {
        var record = await _bed.CreateAsync();
        await Assert.ThrowsAsync<ContainerStateException>(() => _bed.Manager.ExecSyncAsync(record.Id, ["true"], TimeSpan.Zero, CancellationToken.None));
        await Assert.ThrowsAsync<ContainerStateException>(() => _bed.Manager.ReopenLogAsync(record.Id, CancellationToken.None));
        await _bed.Manager.StartAsync(record.Id, CancellationToken.None);
        await Assert.ThrowsAsync<ContainerRequestException>(() => _bed.Manager.ExecSyncAsync(record.Id, [], TimeSpan.Zero, CancellationToken.None));
        Assert.Equal(0, (await _bed.Manager.ExecSyncAsync(record.Id, ["true"], TimeSpan.Zero, CancellationToken.None)).ExitCode);
        await _bed.Manager.ReopenLogAsync(record.Id, CancellationToken.None);

        using var hold = new CancellationTokenSource();
        var io = new InteractiveStreams(null, null, null, false, null);
        var running = Enumerable.Range(0, ContainerManager.MaxExecsPerContainer)
            .Select(_ => _bed.Manager.ExecAsync(record.Id, ["sleep"], io, hold.Token)).ToList();
        await Assert.ThrowsAsync<ContainerLimitException>(() => _bed.Manager.ExecAsync(record.Id, ["sleep"], io, CancellationToken.None));
        await hold.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.WhenAll(running));
        // The slots came back.
        Assert.Equal(0, (await _bed.Manager.ExecSyncAsync(record.Id, ["true"], TimeSpan.Zero, CancellationToken.None)).ExitCode);
    }
}
