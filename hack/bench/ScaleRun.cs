using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.Bench;

/// <summary>The scale benchmark on one runtime, from an empty node back to an empty node.</summary>
internal static class ScaleRun
{
    private static readonly TimeSpan ReadBudget = TimeSpan.FromSeconds(40);

    public static async Task<ScaleResult> MeasureAsync(NodeUnderTest node, string image, int pods, int readCalls, string work)
    {
        using var channel = BerthDaemon.CreateChannel(node.SocketPath);
        var runtime = new RuntimeService.RuntimeServiceClient(channel);
        await new ImageService.ImageServiceClient(channel).PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var cgroupRoot = $"/berth-bench-scale-{node.Name}-{Environment.ProcessId}";
        var workload = new PodWorkload(runtime, image, cgroupRoot, Path.Combine(work, $"{node.Name}-pods"));
        var started = new List<string>();
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(2));
            var memory = new List<MemorySample> { node.Memory(0) };

            var profiles = new List<CpuBreakdown>();
            var windows = new List<(DateTime, DateTime)>();
            var from = DateTime.UtcNow;
            var ten = await StartWaveAsync(workload, "ten", 10, started, node, cpu: null, profiles, work);
            windows.Add((from, DateTime.UtcNow));
            await RemoveAllAsync(workload, started);

            var waves = new List<IReadOnlyList<PodStart>>();
            var cpu = new List<WaveCpu>();
            for (var w = 0; w < pods / ScaleBenchmark.Wave; w++)
            {
                var profiled = w == 0 || w == pods / ScaleBenchmark.Wave - 1;
                from = DateTime.UtcNow;
                waves.Add(await StartWaveAsync(workload, $"w{w}", ScaleBenchmark.Wave, started, node, cpu, profiled ? profiles : null, work));
                if (profiled) windows.Add((from, DateTime.UtcNow));
                await Task.Delay(TimeSpan.FromSeconds(1));
                memory.Add(node.Memory(started.Count));
            }
            Console.Error.WriteLine($"{node.Name}: {started.Count} pods, {memory[^1].Shims} shims, {memory[^1].Infra} infra");

            var (reads, churned) = await ReadUnderChurnAsync(node, image, runtime, readCalls, pods, cgroupRoot, work);
            return new ScaleResult(ten, waves, cpu, memory, reads, churned, profiles, windows);
        }
        finally
        {
            // Whatever the runtime holds, so that a wave that failed halfway is removed too.
            started = [.. (await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items.Select(p => p.Id)];
            await RemoveAllAsync(workload, started);
            BenchCgroups.Remove(cgroupRoot);
        }
    }

    /// <summary>
    /// Starts <paramref name="count"/> pods at once; the CPU the wave took goes to <paramref name="cpu"/>, and where it went
    /// to <paramref name="profiles"/>.
    /// </summary>
    private static async Task<IReadOnlyList<PodStart>> StartWaveAsync(
        PodWorkload workload, string prefix, int count, List<string> started, NodeUnderTest node, List<WaveCpu>? cpu, List<CpuBreakdown>? profiles, string work)
    {
        var profile = profiles is null ? null : CpuProfile.Start(Path.Combine(work, $"{node.Name}-{prefix}.perf"));
        var (machine, daemon) = (ProcessProbe.MachineBusyMs(), ProcessProbe.CpuMs(node.DaemonPid));
        var wave = await Task.WhenAll(Enumerable.Range(0, count).Select(i => workload.StartAsync($"{prefix}-{i}")));
        cpu?.Add(new WaveCpu((ProcessProbe.MachineBusyMs() - machine) / count, (ProcessProbe.CpuMs(node.DaemonPid) - daemon) / count));
        if (profile is not null)
        {
            var shims = node.Shims();
            profiles!.Add(await profile.StopAsync(pid =>
                pid == node.DaemonPid ? "daemon" : shims.Contains(pid) ? "shims" : pid == Environment.ProcessId ? "benchmark client" : null, count));
        }
        started.AddRange(wave.Select(p => p.PodId));
        return wave;
    }

    /// <summary>Removes the pods, a wave at a time, as kubelet tears down a scaled-in Deployment.</summary>
    private static async Task RemoveAllAsync(PodWorkload workload, List<string> pods)
    {
        foreach (var chunk in pods.Chunk(ScaleBenchmark.Wave).ToList())
        {
            await Task.WhenAll(chunk.Select(id => workload.RemoveAsync(id)));
            pods.RemoveAll(chunk.Contains);
        }
    }

    /// <summary>
    /// Each read path timed on one client while another, on its own connection, starts a pod and removes it again
    /// for as long as the reads last.
    /// </summary>
    private static async Task<(List<ReadPath> Reads, int Churned)> ReadUnderChurnAsync(
        NodeUnderTest node, string image, RuntimeService.RuntimeServiceClient runtime, int calls, int pods, string cgroupRoot, string work)
    {
        using var churnChannel = BerthDaemon.CreateChannel(node.SocketPath);
        var churnWorkload = new PodWorkload(new RuntimeService.RuntimeServiceClient(churnChannel), image, cgroupRoot, Path.Combine(work, $"{node.Name}-churn"));
        using var stop = new CancellationTokenSource();
        var churned = 0;
        var churn = Task.Run(async () =>
        {
            // A pod is never cancelled halfway: the loop ends between pods.
            while (!stop.IsCancellationRequested)
            {
                var pod = await churnWorkload.StartAsync($"churn-{churned}");
                await churnWorkload.RemoveAsync(pod.PodId);
                churned++;
            }
        });
        var containers = pods * 2;
        async Task<ReadPath> TimeAsync(string name, int expected, Func<Task<int>> read)
        {
            var failed = 0;
            var times = await Percentile.TimeWithinAsync(calls, ReadBudget, async () =>
            {
                try
                {
                    var count = await read();
                    if (count < expected) throw new InvalidOperationException($"{node.Name}: {name} listed {count}, fewer than {expected}");
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.Unknown)
                {
                    // containerd 1.6 fails the whole list when one container goes away during it: counted, and timed.
                    failed++;
                }
            });
            return new ReadPath(name, times, failed);
        }
        try
        {
            List<ReadPath> reads =
            [
                await TimeAsync($"ListContainers ({containers})", containers, async () => (await runtime.ListContainersAsync(new ListContainersRequest())).Containers.Count),
                await TimeAsync($"ListPodSandbox ({pods})", pods, async () => (await runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items.Count),
                await TimeAsync($"ListContainerStats ({containers})", containers, async () => (await runtime.ListContainerStatsAsync(new ListContainerStatsRequest())).Stats.Count),
                await TimeAsync($"ListPodSandboxStats ({pods})", pods, async () => (await runtime.ListPodSandboxStatsAsync(new ListPodSandboxStatsRequest())).Stats.Count),
            ];
            return (reads, churned);
        }
        finally
        {
            await stop.CancelAsync();
            await churn;
        }
    }
}

/// <summary>CPU per pod of one wave (ms): the whole machine's busy time (the benchmark client's included), and the daemon's.</summary>
internal sealed record WaveCpu(double Machine, double Daemon);

/// <summary>One read path's call times at scale, and how many of its calls the runtime failed.</summary>
internal sealed record ReadPath(string Name, List<double> Times, int Failed);
