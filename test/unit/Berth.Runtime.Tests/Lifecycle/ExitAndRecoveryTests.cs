using Berth.Runtime.Containers;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>Exits taken from the exit files and the shims' ends, and what a restarted berthd makes of what it finds.</summary>
public sealed class ExitAndRecoveryTests : IDisposable
{
    private readonly LifecycleBed _bed = new();

    public void Dispose() => _bed.Dispose();

    [Theory]
    [InlineData(0, "Completed")]
    [InlineData(3, "Error")]
    public async Task An_exit_file_makes_the_container_exited(int code, string reason)
    {
        var record = await _bed.RunningAsync();
        _bed.Runtime.Exit(record.Id, code);
        var exited = await _bed.WaitForAsync(record.Id, r => r?.State == ContainerState.Exited);
        Assert.Equal((code, reason), (exited!.ExitCode, exited.Reason));
        Assert.Equal(["create", "start", "delete"], _bed.Runtime.CallsFor(record.Id));
        await WaitForNoFileAsync(_bed.ExitFileOf(record.Id));
        Assert.Equal(["Created:Created", "Started:Running", "Exited:Exited"], _bed.EventsOf(record.Id));
    }

    [Fact]
    public async Task A_shim_that_dies_before_its_container_gets_it_killed_and_reported()
    {
        var record = await _bed.RunningAsync();
        _bed.Runtime.ShimGone(record.Shim!.Pid);
        var exited = await _bed.WaitForAsync(record.Id, r => r?.State == ContainerState.Exited);
        Assert.Equal((137, "Error"), (exited!.ExitCode, exited.Reason));
        Assert.Contains("berth-shim exited before the container did", exited.Message, StringComparison.Ordinal);
        Assert.Equal("delete", _bed.Runtime.CallsFor(record.Id)[^1]);
    }

    [Fact]
    public async Task An_exit_file_that_does_not_parse_is_an_unknown_exit()
    {
        var record = await _bed.RunningAsync();
        await File.WriteAllTextAsync(_bed.ExitFileOf(record.Id), "{\"exitCo");
        var exited = await _bed.WaitForAsync(record.Id, r => r?.State == ContainerState.Exited);
        Assert.Equal(255, exited!.ExitCode);
    }

    [Fact]
    public async Task A_create_a_crash_interrupted_is_undone_at_start()
    {
        var record = await _bed.CreateAsync();
        // What a crash between the reservation and the shim leaves: a Creating record, a bundle, layers.
        var records = _bed.Records();
        records.Update(record with { State = ContainerState.Creating, Shim = null });
        await _bed.RestartAsync();
        _bed.AssertNoTraceOf(record);
        Assert.Equal(["kill-shims", "delete"], _bed.Runtime.CallsFor(record.Id)[1..]);
        // The name is free again.
        await _bed.CreateAsync();
    }

    [Fact]
    public async Task An_exit_while_berthd_was_down_is_taken_at_start()
    {
        var record = await _bed.RunningAsync();
        _bed.Crash();
        _bed.Runtime.Exit(record.Id, 42);
        await _bed.RestartAsync();
        var exited = _bed.Manager.Get(record.Id)!;
        Assert.Equal((ContainerState.Exited, 42), (exited.State, exited.ExitCode));
        Assert.False(File.Exists(_bed.ExitFileOf(record.Id)));
    }

    [Fact]
    public async Task A_container_whose_shim_is_gone_at_start_is_exited_with_an_unknown_status()
    {
        var record = await _bed.RunningAsync();
        _bed.Crash();
        _bed.Runtime.ShimGone(record.Shim!.Pid);
        await _bed.RestartAsync();
        var exited = _bed.Manager.Get(record.Id)!;
        Assert.Equal((ContainerState.Exited, 255), (exited.State, exited.ExitCode));
        Assert.Contains("was gone when berthd started", exited.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_container_whose_shim_lives_runs_on_and_its_shim_is_watched_again()
    {
        var record = await _bed.RunningAsync();
        await _bed.RestartAsync();
        Assert.Equal(ContainerState.Running, _bed.Manager.Get(record.Id)!.State);
        _bed.Runtime.ShimGone(record.Shim!.Pid);
        var exited = await _bed.WaitForAsync(record.Id, r => r?.State == ContainerState.Exited);
        Assert.Equal(137, exited!.ExitCode);
    }

    [Fact]
    public async Task A_container_whose_handler_left_the_configuration_is_exited_at_start_and_removable()
    {
        _bed.Handlers.Add("old");
        await _bed.RestartAsync();
        var record = await _bed.CreateAsync(LifecycleBed.Request() with { RuntimeHandler = "old" });
        await _bed.Manager.StartAsync(record.Id, CancellationToken.None);
        _bed.Handlers.Remove("old");
        await _bed.RestartAsync();
        var exited = _bed.Manager.Get(record.Id)!;
        Assert.Equal((ContainerState.Exited, 255), (exited.State, exited.ExitCode));
        Assert.Contains("runtime handler 'old' is no longer configured", exited.Message, StringComparison.Ordinal);
        await _bed.Manager.RemoveAsync(record.Id, CancellationToken.None);
        _bed.AssertNoTraceOf(record);
    }

    [Fact]
    public async Task Exit_files_of_removed_containers_are_deleted_at_start()
    {
        var stray = _bed.ExitFileOf(new string('f', 64));
        Directory.CreateDirectory(Path.GetDirectoryName(stray)!);
        _bed.Crash();
        await File.WriteAllTextAsync(stray, "{\"exitCode\":0,\"exitedAt\":1}\n");
        await _bed.RestartAsync();
        Assert.False(File.Exists(stray));
    }

    [Fact]
    public async Task Exited_containers_stay_exited_across_restarts()
    {
        var record = await _bed.RunningAsync();
        await _bed.Manager.StopAsync(record.Id, TimeSpan.Zero, CancellationToken.None);
        var calls = _bed.Runtime.Calls.Count;
        await _bed.RestartAsync();
        Assert.Equal(ContainerState.Exited, _bed.Manager.Get(record.Id)!.State);
        Assert.Equal(calls, _bed.Runtime.Calls.Count);
    }

    private static async Task WaitForNoFileAsync(string path)
    {
        for (var i = 0; i < 500 && File.Exists(path); i++) await Task.Delay(10);
        Assert.False(File.Exists(path), $"{path} is still there");
    }
}
