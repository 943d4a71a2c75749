using System.Diagnostics;
using System.Globalization;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// CheckpointContainer and a restore (CreateContainer from the archive, StartContainer) of a container holding 10, 100
/// and 500 MiB of touched memory, in the cgroup v2 guest (Debian 12's 6.1 kernel, where CRIU 3.17 runs; this machine's
/// 6.18 it cannot). containerd 1.6 has no CheckpointContainer, so the reference is <c>runc checkpoint</c> itself on the
/// same container: what Berth adds is the archive (the rootfs diff, the copy into one tar) and its bookkeeping.
/// </summary>
internal static class CheckpointBenchmark
{
    private const string Archives = "/var/lib/berth-bench-checkpoints";
    private const string RuncRoot = "/run/berth/containers/runtime/default";

    public static async Task<string> RunAsync(int rounds)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        var image = await BenchImage.PushSleeperAsync(registry);
        await using var vm = await NodeVm.StartAsync(new NodeVmOptions { RegistryPort = registry.Port });
        await vm.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var rows = new List<string>();
        foreach (var mebibytes in new[] { 10, 100, 500 })
        {
            var runc = new List<double>();
            var checkpoint = new List<double>();
            var restore = new List<double>();
            long size = 0;
            for (var round = 0; round < rounds; round++)
            {
                var result = await MeasureAsync(vm, image, mebibytes, round);
                runc.Add(result.Runc);
                checkpoint.Add(result.Checkpoint);
                restore.Add(result.Restore);
                size = result.Size;
            }
            rows.Add($"  {mebibytes,4} MiB   {P(checkpoint),8:F0}   {P(runc),8:F0}   {P(checkpoint) / P(runc),5:F2}   {size / 1048576.0,8:F1}   {P(restore),8:F0}");
        }
        return string.Join(Environment.NewLine, [
            $"Checkpoint and restore in the cgroup v2 guest (qemu TCG, 2 CPUs, 2 GiB; runc 1.1.5, CRIU 3.17.1), p50 of {rounds} rounds in ms;",
            "touched memory is one process's (busybox dd's buffer); restore is CreateContainer from the archive + StartContainer in a new pod:",
            "  memory     Checkpoint   runc ckpt   ratio   archive MiB   restore",
            .. rows,
        ]);
    }

    private sealed record Result(double Checkpoint, double Runc, double Restore, long Size);

    private static async Task<Result> MeasureAsync(NodeVm vm, string image, int mebibytes, int round)
    {
        var archive = $"{Archives}/{mebibytes}-{round}.tar";
        var (podId, pod) = await RunPodAsync(vm, $"ckpt-{mebibytes}-{round}");
        string? restoredPod = null;
        try
        {
            var config = Container(image);
            config.Command.AddRange(["/bin/busybox", "sh", "-c", $"/bin/busybox dd if=/dev/zero bs={mebibytes}M count=1 2>/dev/null | /bin/busybox sleep 2147483647"]);
            var id = await CreateStartAsync(vm, podId, pod, config);
            await WaitForMemoryAsync(vm, mebibytes);

            // runc's own checkpoint of the same container, into a directory, left running as Berth leaves it.
            var runc = double.Parse(await vm.ShellAsync(
                $"mkdir -p {Archives}/raw && s=$(date +%s%N) && runc --root {RuncRoot} checkpoint --leave-running --image-path {Archives}/raw --work-path {Archives}/raw {id} "
                + $"&& echo $((($(date +%s%N) - s) / 1000000)); rm -rf {Archives}/raw"), CultureInfo.InvariantCulture);

            var watch = Stopwatch.StartNew();
            await vm.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = id, Location = archive });
            var checkpoint = watch.Elapsed.TotalMilliseconds;
            var size = long.Parse(await vm.ShellAsync($"stat -c %s {archive}"), CultureInfo.InvariantCulture);
            await RemovePodAsync(vm, podId);

            var (newPod, newConfig) = await RunPodAsync(vm, $"ckpt-{mebibytes}-{round}-restored");
            restoredPod = newPod;
            var restoredConfig = Container(archive);
            watch.Restart();
            await CreateStartAsync(vm, newPod, newConfig, restoredConfig);
            var restore = watch.Elapsed.TotalMilliseconds;
            await WaitForMemoryAsync(vm, mebibytes);
            return new Result(checkpoint, runc, restore, size);
        }
        finally
        {
            await RemovePodAsync(vm, podId);
            if (restoredPod is not null) await RemovePodAsync(vm, restoredPod);
            await vm.ShellAsync($"rm -rf {Archives}");
        }
    }

    private static ContainerConfig Container(string image) =>
        new() { Metadata = new ContainerMetadata { Name = "memory" }, Image = new ImageSpec { Image = image } };

    private static async Task<(string, PodSandboxConfig)> RunPodAsync(NodeVm vm, string name)
    {
        var pod = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = "bench", Uid = Guid.NewGuid().ToString() },
            Linux = new LinuxPodSandboxConfig
            {
                SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } },
            },
        };
        return ((await vm.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId, pod);
    }

    private static async Task<string> CreateStartAsync(NodeVm vm, string podId, PodSandboxConfig pod, ContainerConfig config)
    {
        var id = (await vm.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
        await vm.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        return id;
    }

    private static async Task RemovePodAsync(NodeVm vm, string podId)
    {
        await vm.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await vm.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
    }

    /// <summary>Until dd's buffer is resident: the largest VmRSS of the processes whose command line names it (busybox dd rewrites its "if=" to "if").</summary>
    private static async Task WaitForMemoryAsync(NodeVm vm, int mebibytes)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var kilobytes = await vm.ShellAsync("for p in $(pgrep -f 'dd if'); do grep VmRSS /proc/$p/status; done | awk '{print $2}' | sort -n | tail -1");
            if (long.TryParse(kilobytes, CultureInfo.InvariantCulture, out var rss) && rss >= mebibytes * 1024L) return;
            if (watch.Elapsed > TimeSpan.FromMinutes(5)) throw new TimeoutException($"the container's dd never held {mebibytes} MiB (VmRSS {kilobytes} kB)");
            await Task.Delay(500);
        }
    }

    private static double P(List<double> values) => Percentile.Of(values, 50);
}
