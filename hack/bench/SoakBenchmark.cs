using System.Diagnostics;
using System.Text;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Google.Protobuf;

namespace Berth.Bench;

/// <summary>
/// The churn soak, on berthd alone (hack/bench/run --only soak --minutes N): N pods stay live while the oldest is
/// exec'd into, stopped and removed and a new one is started and exec'd into, over and over. Every minute, between
/// two cycles (so exactly N pods are live), berthd and the node are counted; each count must end where it started.
/// </summary>
internal static class SoakBenchmark
{
    public static async Task<string> RunAsync(int pods, TimeSpan duration, string plotDirectory, CancellationToken cancellationToken)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        var image = await BenchImage.PushSleeperAsync(registry);
        var work = Directory.CreateTempSubdirectory("berth-bench-soak-").FullName;
        var cgroupRoot = $"/berth-bench-soak-{Environment.ProcessId}";
        try
        {
            await using var berth = await BerthDaemon.StartAsync(new DaemonOptions { LogLevel = "info" });
            using var network = BenchNetwork.Create("berth-soak", berth.CniConfDir, Path.Combine(work, "ipam"), 150 + Random.Shared.Next(0, 50));
            await berth.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } }, cancellationToken: cancellationToken);
            var workload = new PodWorkload(berth.Runtime, image, cgroupRoot, Path.Combine(work, "pods"));
            var live = new Queue<string>();
            var samples = new List<SoakSample>();
            SoakSample Sample(TimeSpan at, int cycles) => SoakSample.Take(at, cycles, berth, network, cgroupRoot, live.Count);
            try
            {
                for (var wave = 0; live.Count < pods; wave++)
                {
                    var started = await Task.WhenAll(Enumerable.Range(0, Math.Min(ScaleBenchmark.Wave, pods - live.Count))
                        .Select(i => workload.StartAsync($"soak-{wave}-{i}", cancellationToken)));
                    foreach (var pod in started) live.Enqueue(pod.PodId);
                }
                var clock = Stopwatch.StartNew();
                var cycles = 0;
                samples.Add(Sample(TimeSpan.Zero, 0));
                Console.Error.WriteLine(samples[^1]);
                while (clock.Elapsed < duration)
                {
                    var oldest = live.Dequeue();
                    await ExecAsync(berth.Runtime, oldest, cancellationToken);
                    await workload.RemoveAsync(oldest, cancellationToken);
                    var pod = await workload.StartAsync($"soak-c{cycles}", cancellationToken);
                    live.Enqueue(pod.PodId);
                    await ExecAsync(berth.Runtime, pod.PodId, cancellationToken);
                    cycles++;
                    if (clock.Elapsed >= TimeSpan.FromMinutes(samples.Count) || clock.Elapsed >= duration)
                    {
                        samples.Add(Sample(clock.Elapsed, cycles));
                        Console.Error.WriteLine(samples[^1]);
                    }
                }
            }
            finally
            {
                while (live.Count > 0) await workload.RemoveAsync(live.Dequeue(), CancellationToken.None);
            }
            var empty = Sample(TimeSpan.Zero, 0);
            Plot(samples, Path.Combine(plotDirectory, "soak.png"));
            return Format(samples, empty, pods);
        }
        finally
        {
            BenchCgroups.Remove(cgroupRoot);
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task ExecAsync(RuntimeService.RuntimeServiceClient runtime, string podId, CancellationToken cancellationToken)
    {
        var containers = await runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = podId } }, cancellationToken: cancellationToken);
        var request = new ExecSyncRequest { ContainerId = containers.Containers[0].Id, Timeout = 10 };
        request.Cmd.AddRange(["/bin/busybox", "echo", "soak"]);
        var reply = await runtime.ExecSyncAsync(request, cancellationToken: cancellationToken);
        if (reply.ExitCode != 0 || reply.Stdout != ByteString.CopyFromUtf8("soak\n"))
            throw new InvalidOperationException($"exec in pod {podId}: exit {reply.ExitCode}, stdout {reply.Stdout.ToStringUtf8()}");
    }

    private static string Format(List<SoakSample> samples, SoakSample empty, int pods)
    {
        var (first, last) = (samples[0], samples[^1]);
        var text = new StringBuilder();
        text.AppendLine($"Churn soak, berthd alone: {pods} pods live (two containers each), the oldest exec'd into, stopped and removed and a new one started and");
        text.AppendLine($"exec'd into, {last.Cycles} times in {last.At.TotalMinutes:F0} minutes ({last.Cycles / last.At.TotalMinutes:F0} pods a minute); counted each minute between two cycles:");
        text.AppendLine("                           start      end      min      max   growth | after removing all");
        foreach (var (name, value) in SoakSample.Counters)
        {
            var values = samples.Select(value).ToList();
            text.AppendLine($"  {name,-22}{value(first),9:0.#}{value(last),9:0.#}{values.Min(),9:0.#}{values.Max(),9:0.#}{value(last) - value(first),9:+0.#;-0.#;0} | {value(empty),9:0.#}");
        }
        return text.ToString().TrimEnd();
    }

    private static void Plot(List<SoakSample> samples, string path) =>
        BenchPlot.Lines(path, "Churn soak: each count over its value at the start (1 = no growth)", "minutes", "count / count at start",
            SoakSample.Counters.Select(c => (c.Name, samples.Select(s => s.At.TotalMinutes).ToArray(),
                samples.Select(s => c.Value(s) / Math.Max(c.Value(samples[0]), 1)).ToArray())));
}

/// <summary>One minute's counts of berthd and of what its pods hold on the node.</summary>
internal sealed record SoakSample(
    TimeSpan At, int Cycles, int Pods, double Rss, int Fds, int Threads, int Shims, int Mounts, int NetnsPins, int Veths, int Leases, int Cgroups)
{
    public static readonly (string Name, Func<SoakSample, double> Value)[] Counters =
    [
        ("berthd RSS (MiB)", s => s.Rss), ("berthd open fds", s => s.Fds), ("berthd threads", s => s.Threads),
        ("shims", s => s.Shims), ("mounts under berth", s => s.Mounts), ("netns pins", s => s.NetnsPins),
        ("veths on the bridge", s => s.Veths), ("IP leases", s => s.Leases), ("pod cgroups", s => s.Cgroups),
    ];

    public static SoakSample Take(TimeSpan at, int cycles, BerthDaemon berth, BenchNetwork network, string cgroupRoot, int pods)
    {
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' '))
            .Where(f => f[4].StartsWith(berth.Directory + "/", StringComparison.Ordinal)).ToList();
        // The filesystem type follows the " - " separator in mountinfo.
        var pins = mounts.Count(f => f[Array.IndexOf(f, "-") + 1] == "nsfs");
        return new SoakSample(at, cycles, pods, ProcessProbe.RssMiB(berth.Pid), ProcessProbe.OpenFiles(berth.Pid), ProcessProbe.Threads(berth.Pid),
            ProcessProbe.Find($"berth-shim run .*{berth.Directory}/").Length, mounts.Count, pins, network.Veths(), network.Leases(), BenchCgroups.Count(cgroupRoot));
    }

    public override string ToString() =>
        $"soak {At.TotalMinutes:F1} min, {Cycles} cycles, {Pods} pods: RSS {Rss:F1} MiB, {Fds} fds, {Threads} threads, {Shims} shims, " +
        $"{Mounts} mounts, {NetnsPins} pins, {Veths} veths, {Leases} leases, {Cgroups} cgroups";
}
