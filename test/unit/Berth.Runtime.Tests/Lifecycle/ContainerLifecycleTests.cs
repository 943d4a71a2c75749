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
    public async Task A_stop_before_the_init_has_its_handler_waits_for_it_and_signals_once()
    {
        _bed.Runtime.HandlersAfterStart = TimeSpan.FromMilliseconds(200);
        var record = await _bed.RunningAsync();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await _bed.Manager.StopAsync(record.Id, TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.InRange(watch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        Assert.Equal(143, _bed.Manager.Get(record.Id)!.ExitCode);
        Assert.Equal(["SIGTERM"], _bed.Runtime.Delivered[record.Id]);
        Assert.Equal(["create", "start", "kill SIGTERM", "delete"], _bed.Runtime.CallsFor(record.Id));
    }

    [Fact]
    public async Task An_init_that_never_handles_the_stop_signal_is_killed_when_the_grace_period_ends()
    {
        _bed.Runtime.HandlersAfterStart = TimeSpan.FromHours(1);
        var record = await _bed.RunningAsync();
        await _bed.Manager.StopAsync(record.Id, TimeSpan.FromMilliseconds(300), CancellationToken.None);
        Assert.Equal(137, _bed.Manager.Get(record.Id)!.ExitCode);
        Assert.Equal(["create", "start", "kill SIGKILL all", "delete"], _bed.Runtime.CallsFor(record.Id));
    }

    [Fact]
    public async Task Real_time_stop_signals_reach_the_runtime_as_numbers()
    {
        var record = await _bed.CreateAsync(LifecycleBed.Request() with { StopSignal = "SIGRTMINPLUS3" });
        await _bed.Manager.StartAsync(record.Id, CancellationToken.None);
        await _bed.Manager.StopAsync(record.Id, TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Equal(["create", "start", "kill 37", "delete"], _bed.Runtime.CallsFor(record.Id));
    }

    [Theory]
    [InlineData("SIGTERM", 15)]
    [InlineData("term", 15)]
    [InlineData("15", 15)]
    [InlineData("SIGIOT", 6)]
    [InlineData("SIGRTMIN", 34)]
    [InlineData("SIGRTMIN+3", 37)]
    [InlineData("SIGRTMINPLUS15", 49)]
    [InlineData("RTMAX-1", 63)]
    [InlineData("SIGRTMAXMINUS14", 50)]
    [InlineData("SIGRTMAX", 64)]
    public void Signal_names_parse_as_images_and_CRI_spell_them(string name, int number)
    {
        Assert.True(Signals.TryParse(name, out var parsed));
        Assert.Equal(number, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("SIGFOO")]
    [InlineData("0")]
    [InlineData("65")]
    [InlineData("SIGRTMIN+31")]
    [InlineData("RTMAX+1")]
    public void Names_of_no_signal_are_refused(string name) => Assert.False(Signals.TryParse(name, out _));

    [Theory]
    [InlineData(6, "SIGABRT")]
    [InlineData(15, "SIGTERM")]
    [InlineData(17, "SIGCHLD")]
    [InlineData(29, "SIGIO")]
    [InlineData(31, "SIGSYS")]
    [InlineData(32, "32")]
    [InlineData(64, "64")]
    public void Classic_signals_go_to_the_runtime_by_name_and_real_time_ones_by_number(int signal, string argument) =>
        Assert.Equal(argument, Signals.RuntimeArgument(signal));

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
