using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// A node's worth of pods on berthd and on containerd 1.6 in one run: 10 pods started at once on an empty node,
/// then 250 started in waves of 25 (kubelet syncs the pods of a rollout concurrently), each with its own network
/// namespace on the runtime's bridge and two containers; memory after every wave; then the List and Stats read
/// paths at 250 pods while a second client starts and removes pods. Everything is removed at the end.
/// </summary>
internal static class ScaleBenchmark
{
    public const int Wave = 25;

    public static async Task<string> RunAsync(int pods, int readCalls, string plotDirectory)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        var image = await BenchImage.PushSleeperAsync(registry);
        var work = Directory.CreateTempSubdirectory("berth-bench-scale-").FullName;
        try
        {
            ScaleResult b, c;
            IReadOnlyList<ReceivedSpan> spans;
            // Berth runs traced, as a node with [tracing] on would: its spans give the phases of each pod start.
            await using var collector = await OtlpReceiver.StartAsync();
            await using (var berth = await BerthDaemon.StartAsync(new DaemonOptions { LogLevel = "info", ExtraConfig = $"[tracing]\nendpoint = \"{collector.HttpEndpoint}\"\n" }))
            {
                using var network = BenchNetwork.Create("berth-bench", berth.CniConfDir, Path.Combine(work, "berth-ipam"), 150 + Random.Shared.Next(0, 25));
                var node = new NodeUnderTest("berth", berth.SocketPath, berth.Pid, $"berth-shim run .*{berth.Directory}/", "berth-shim pause --sandbox", network);
                b = await ScaleRun.MeasureAsync(node, image, pods, readCalls, work);
            }
            // berthd's exit sent the last batch.
            spans = collector.Spans;
            var confDirectory = Path.Combine(work, "containerd-net.d");
            using (var network = BenchNetwork.Create("containerd-bench", confDirectory, Path.Combine(work, "containerd-ipam"), 175 + Random.Shared.Next(0, 25)))
            await using (var containerd = await ContainerdDaemon.StartAsync(registry.Host, confDirectory, image))
            {
                // containerd's pause is the sandbox image's process: busybox sleep, a child of the pod's shim.
                var node = new NodeUnderTest("containerd", containerd.SocketPath, containerd.Pid, $"containerd-shim-runc-v2 .*{containerd.Directory}/", "sleep 2147483647", network);
                try
                {
                    c = await ScaleRun.MeasureAsync(node, image, pods, readCalls, work);
                }
                catch (Exception e)
                {
                    // Reported before the daemon's disposal, whose own failure would hide it.
                    Console.Error.WriteLine($"containerd: {e}");
                    throw;
                }
            }
            ScaleReport.Plot(b, c, plotDirectory);
            return ScaleReport.Format(b, c, pods) + "\n\n" + PhaseReport.Format(spans, b.ProfiledWindows, pods);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}

/// <summary>One runtime as the benchmark sees it: its socket, its daemon, how its shims and infra processes are found.</summary>
internal sealed record NodeUnderTest(string Name, string SocketPath, int DaemonPid, string ShimPattern, string InfraPattern, BenchNetwork Network)
{
    public int[] Shims() => ProcessProbe.Find(ShimPattern);

    /// <summary>Infra processes (berth's pod PID-namespace holders, containerd's pause): those whose parent is this runtime's daemon or one of its shims.</summary>
    public int[] Infra(int[] shims) =>
        [.. ProcessProbe.Find(InfraPattern).Where(pid => ProcessProbe.Parent(pid) is var parent && (parent == DaemonPid || shims.Contains(parent)))];

    public MemorySample Memory(int pods)
    {
        var shims = Shims();
        var infra = Infra(shims);
        return new MemorySample(pods, ProcessProbe.RssMiB(DaemonPid), shims.Length, ProcessProbe.PssMiB(shims), infra.Length, ProcessProbe.PssMiB(infra),
            File.ReadLines("/proc/self/mountinfo").Count());
    }
}

/// <summary>
/// Runtime memory with <see cref="Pods"/> pods: the daemon's RSS, and the PSS of its shims and infra processes (MiB); and
/// the node's mount count then.
/// </summary>
internal sealed record MemorySample(int Pods, double DaemonRss, int Shims, double ShimsPss, int Infra, double InfraPss, int Mounts)
{
    public double Total => DaemonRss + ShimsPss + InfraPss;
}

/// <summary>
/// What one runtime measured: the 10-pod start, each wave of the 250 and its CPU, memory per wave, the read paths, and CPU
/// profiles of the 10-pod start and the first and last waves, and when those three ran.
/// </summary>
internal sealed record ScaleResult(
    IReadOnlyList<PodStart> Ten, IReadOnlyList<IReadOnlyList<PodStart>> Waves, IReadOnlyList<WaveCpu> Cpu, IReadOnlyList<MemorySample> Memory,
    IReadOnlyList<ReadPath> Reads, int ChurnCycles, IReadOnlyList<CpuBreakdown> Profiles, IReadOnlyList<(DateTime From, DateTime To)> ProfiledWindows)
{
    public IEnumerable<PodStart> All => Waves.SelectMany(w => w);
}
