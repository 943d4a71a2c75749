using System.Diagnostics;
using Berth.Native;

namespace Berth.Runtime.Tests;

/// <summary>The pidfd watch berthd keeps on every shim, against real processes (no root needed).</summary>
public sealed class ProcessExitWatcherTests : IDisposable
{
    private readonly ProcessExitWatcher _watcher = new();

    public void Dispose() => _watcher.Dispose();

    [Fact]
    public async Task The_exit_of_a_watched_process_is_told_once()
    {
        using var sleeper = Process.Start("sleep", "30");
        var told = 0;
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _watcher.Watch(sleeper.Id, ProcFs.StartTimeOf(sleeper.Id)!.Value, () =>
        {
            Interlocked.Increment(ref told);
            exited.TrySetResult();
        });
        await Task.Delay(100);
        Assert.False(exited.Task.IsCompleted, "told before the process exited");
        sleeper.Kill();
        await exited.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(100);
        Assert.Equal(1, told);
    }

    [Fact]
    public async Task A_process_that_is_gone_or_is_another_now_is_told_at_once()
    {
        using var sleeper = Process.Start("sleep", "30");
        var startTime = ProcFs.StartTimeOf(sleeper.Id)!.Value;
        var reused = new TaskCompletionSource();
        // Same PID, another start time: a later process that reused the PID is not the one watched.
        _watcher.Watch(sleeper.Id, startTime + 1, () => reused.TrySetResult());
        await reused.Task.WaitAsync(TimeSpan.FromSeconds(10));

        sleeper.Kill();
        await sleeper.WaitForExitAsync();
        var gone = new TaskCompletionSource();
        _watcher.Watch(sleeper.Id, startTime, () => gone.TrySetResult());
        await gone.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
