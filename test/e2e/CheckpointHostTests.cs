using System.Diagnostics;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// Checkpointing on this machine: its kernel (6.18) is one CRIU 3.17 cannot run on, so CheckpointContainer must say
/// so with what <c>criu check</c> said (NodeCheckpointTests checkpoint and restore in the guest's 6.1).
/// </summary>
public sealed class CheckpointHostTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private static async Task<(int ExitCode, string Output)> CriuCheckAsync()
    {
        var info = new ProcessStartInfo("criu", "check") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var criu = Process.Start(info)!;
        var output = await criu.StandardError.ReadToEndAsync() + await criu.StandardOutput.ReadToEndAsync();
        await criu.WaitForExitAsync();
        return (criu.ExitCode, output);
    }

    [Fact]
    public async Task CheckpointContainer_says_what_criu_check_said_where_CRIU_cannot_run_and_the_container_runs_on()
    {
        var pod = bed.Pod("ckpt-host", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        var location = Path.Combine(Path.GetTempPath(), $"berth-ckpt-{Guid.NewGuid():N}", "c.tar");
        try
        {
            var id = await bed.RunAsync(podId, pod, bed.Container("sleeper", "sleep", "1000"));
            var (exitCode, output) = await CriuCheckAsync();
            var call = bed.Daemon.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = id, Location = location }).ResponseAsync;
            if (exitCode == 0)
            {
                // A kernel CRIU runs on: the checkpoint is made.
                await call;
                Assert.True(File.Exists(location));
            }
            else
            {
                var refused = await Assert.ThrowsAsync<RpcException>(() => call);
                Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
                Assert.Contains("criu check", refused.Status.Detail, StringComparison.Ordinal);
                var said = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Last(l => l.StartsWith("Error", StringComparison.Ordinal));
                Assert.Contains(said, refused.Status.Detail, StringComparison.Ordinal);
                Assert.False(Directory.Exists(Path.GetDirectoryName(location)));
            }
            Assert.Equal(ContainerState.ContainerRunning, (await bed.StatusAsync(id)).State);

            var tty = bed.Container("tty", "sleep", "1000");
            tty.Tty = true;
            var ttyId = await bed.RunAsync(podId, pod, tty);
            var withTerminal = await Assert.ThrowsAsync<RpcException>(() => bed.Daemon.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = ttyId, Location = location }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, withTerminal.StatusCode);
            Assert.Contains("terminal", withTerminal.Status.Detail, StringComparison.Ordinal);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            if (Directory.Exists(Path.GetDirectoryName(location))) Directory.Delete(Path.GetDirectoryName(location)!, recursive: true);
        }
    }
}
