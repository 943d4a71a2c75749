using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>What a container does to its own filesystem and signals can't hurt berthd, nor make it overstay a deadline.</summary>
public sealed class HostileContainerTests(ContainerTestBed bed, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<ContainerTestBed>
{
    private static (double CpuSeconds, long RssKiB) Usage(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11]) + long.Parse(fields[12]); // utime + stime
        var rss = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return (ticks / 100.0, long.Parse(rss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]));
    }

    [Fact]
    public async Task A_link_to_the_root_and_100000_files_in_a_writable_layer_cost_berthd_little()
    {
        var pod = bed.Pod("hostile-layer", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var idle = Usage(bed.Daemon.Pid);
            var id = await bed.RunAsync(podId, pod, bed.Container("hostile",
                "sh", "-c", "ln -s / /escape && ln -s /proc /p && mkdir /many && cd /many && seq 100000 | xargs touch && echo made && sleep 3600"));
            await ContainerTestBed.WaitForLogAsync(Path.Combine(bed.LogDirectory("hostile-layer"), "hostile.log"), "made", TimeSpan.FromSeconds(120));

            // The stats collector measures the layer every second here (a tenth of the default period).
            ContainerStats stats;
            var deadline = DateTime.UtcNow.AddSeconds(30);
            do
            {
                await Task.Delay(500);
                stats = (await bed.Daemon.Runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = id })).Stats;
            }
            while (stats.WritableLayer?.InodesUsed?.Value < 100_000 && DateTime.UtcNow < deadline);
            Assert.NotNull(stats.WritableLayer);
            Assert.InRange(stats.WritableLayer.InodesUsed.Value, 100_000UL, 100_100UL); // the files, /many, the links: not the host

            var before = Usage(bed.Daemon.Pid);
            var window = System.Diagnostics.Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(10));
            var after = Usage(bed.Daemon.Pid);
            var cpu = (after.CpuSeconds - before.CpuSeconds) / window.Elapsed.TotalSeconds;
            output.WriteLine($"berthd: {cpu:P1} of a core; RSS {idle.RssKiB} KiB before the container, {after.RssKiB} KiB after");
            Assert.True(cpu < 0.10, $"berthd used {cpu:P1} of a core measuring the layer every second");
            Assert.True(after.RssKiB < idle.RssKiB * 3 / 2, $"berthd's RSS went from {idle.RssKiB} KiB to {after.RssKiB} KiB");
            var fs = await bed.Daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest());
            Assert.True(Assert.Single(fs.ContainerFilesystems).InodesUsed.Value >= 100_000);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_writable_layer_deeper_than_path_max_is_removed()
    {
        var pod = bed.Pod("deep-layer", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            // Three chunks of 15 levels of 200-byte names, each moved under the next (no single path passes
            // PATH_MAX on the way): a 9 KB path in the end.
            var chunk = string.Join('/', Enumerable.Repeat(new string('d', 200), 15));
            var id = await bed.RunAsync(podId, pod, bed.Container("deep", "sh", "-c",
                $"cd /tmp && for k in 1 2 3; do mkdir -p c/{chunk} && touch c/{chunk}/f && if [ -e top ]; then mv top c/{chunk}/; fi && mv c top || exit 1; done && echo made && sleep 3600"));
            await ContainerTestBed.WaitForLogAsync(Path.Combine(bed.LogDirectory("deep-layer"), "deep.log"), "made");
            var layer = Path.Combine(bed.Daemon.RootPath, "containers", id);
            Assert.True(Directory.Exists(layer));

            await bed.Daemon.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });

            Assert.False(Directory.Exists(layer));
            Assert.Empty((await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = podId } })).Containers);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_container_runs_at_most_64_execs_at_once()
    {
        var pod = bed.Pod("many-execs", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var id = await bed.RunAsync(podId, pod, bed.Container("target", "sleep", "3600"));
            ExecSyncRequest Sleeper()
            {
                var request = new ExecSyncRequest { ContainerId = id, Timeout = 60 };
                request.Cmd.AddRange(["sleep", "60"]);
                return request;
            }
            var running = Enumerable.Range(0, 64).Select(_ => bed.Daemon.Runtime.ExecSyncAsync(Sleeper()).ResponseAsync).ToList();
            // All 64 are under way once 64 sleeps run in the container.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Host.Run("pgrep", "-f", "^sleep 60$").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length < 64 && DateTime.UtcNow < deadline)
                await Task.Delay(200);

            var refused = await Assert.ThrowsAsync<RpcException>(async () => await bed.Daemon.Runtime.ExecSyncAsync(Sleeper()));
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
            Assert.Contains("64 execs running already", refused.Status.Detail, StringComparison.Ordinal);
            var streaming = new ExecRequest { ContainerId = id, Stdout = true };
            streaming.Cmd.Add("true");
            Assert.NotEmpty((await bed.Daemon.Runtime.ExecAsync(streaming)).Url); // the URL is free; the session would meet the bound

            // Stopping the container ends its execs, and the slots come back.
            await bed.Daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 0 });
            await Task.WhenAll(running.Select(async exec =>
            {
                try
                {
                    await exec; // killed with the container: an exit code or an error, either is fine
                }
                catch (RpcException)
                {
                }
            }));
            var again = new ExecSyncRequest { ContainerId = id, Timeout = 5 };
            again.Cmd.Add("true");
            Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<RpcException>(async () => await bed.Daemon.Runtime.ExecSyncAsync(again))).StatusCode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task StopContainer_answers_before_its_deadline_when_pid_1_ignores_sigterm()
    {
        var pod = bed.Pod("stop-deadline", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            // PID 1 of its namespace with no handler: SIGTERM is ignored, only SIGKILL ends it.
            var id = await bed.RunAsync(podId, pod, bed.Container("stubborn", "sleep", "3600"));
            var watch = System.Diagnostics.Stopwatch.StartNew();
            await bed.Daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 60 }, deadline: DateTime.UtcNow.AddSeconds(4));
            var took = watch.Elapsed;

            Assert.True(took < TimeSpan.FromSeconds(4), $"StopContainer took {took}");
            Assert.True(took > TimeSpan.FromSeconds(2), $"StopContainer gave no grace at all ({took})");
            var status = await bed.StatusAsync(id);
            Assert.Equal(ContainerState.ContainerExited, status.State);
            Assert.Equal(137, status.ExitCode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task StopContainer_with_a_deadline_already_near_kills_at_once()
    {
        var pod = bed.Pod("stop-near", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var id = await bed.RunAsync(podId, pod, bed.Container("stubborn", "sleep", "3600"));
            await bed.Daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 30 }, deadline: DateTime.UtcNow.AddMilliseconds(1500));
            Assert.Equal(ContainerState.ContainerExited, (await bed.StatusAsync(id)).State);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.DeadlineExceeded)
        {
            Assert.Fail("StopContainer outlived its caller's 1.5 s deadline");
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }
}
