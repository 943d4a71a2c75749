using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.Bench;

/// <summary>
/// Stats on berthd and on containerd 1.6, in one run: ListContainerStats over 100 running containers (10
/// host-network pods of 10, each with its pod cgroup), ContainerStats of one of them, and ListPodSandboxStats over the 10 pods, each called
/// after both daemons have taken CPU baselines, so the answers carry usage_nano_cores.
/// </summary>
internal static class StatsBenchmark
{
    private const int Pods = 10;
    private const int PerPod = 10;

    public static async Task<string> RunAsync(int calls)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        var image = await BenchImage.PushSleeperAsync(registry);

        // kubelet asks every 10 s; both daemons are left at their defaults.
        await using var berth = await BerthDaemon.StartAsync();
        await using var containerd = await ContainerdDaemon.StartAsync(registry.Host, sandboxImage: image);
        var b = await MeasureAsync("berth", berth.Runtime, berth.Images, image, calls);
        Result c;
        try
        {
            c = await MeasureAsync("containerd", containerd.Runtime, containerd.Images, image, calls);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"containerd: {e}");
            throw;
        }
        string Row(string label, List<double> berthTimes, List<double>? containerdTimes) => containerdTimes is null
            ? $"  {label,-34}{P(berthTimes, 50),7:F2} {P(berthTimes, 99),6:F2} |    (not implemented)"
            : $"  {label,-34}{P(berthTimes, 50),7:F2} {P(berthTimes, 99),6:F2} |       {P(containerdTimes, 50),7:F2} {P(containerdTimes, 99),6:F2} | {P(berthTimes, 50) / P(containerdTimes, 50):F2}";
        return string.Join(Environment.NewLine,
            $"Stats with {Pods * PerPod} running containers in {Pods} host-network pods, {calls} calls each after the CPU baselines (ms):",
            "                                    berth p50   p99   | containerd p50   p99   | ratio p50",
            Row($"ListContainerStats ({Pods * PerPod})", b.ListContainers, c.ListContainers),
            Row("ContainerStats (one)", b.Container, c.Container),
            Row($"ListPodSandboxStats ({Pods})", b.ListPods ?? throw new InvalidOperationException("berth: ListPodSandboxStats unimplemented"), c.ListPods));
    }

    private sealed record Result(List<double> ListContainers, List<double> Container, List<double>? ListPods);

    private static async Task<Result> MeasureAsync(
        string name, RuntimeService.RuntimeServiceClient runtime, ImageService.ImageServiceClient images, string image, int calls)
    {
        await images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var pods = new List<string>();
        var cgroupRoot = $"/berth-bench-{name}-{Environment.ProcessId}";
        try
        {
            var containers = new List<string>();
            for (var p = 0; p < Pods; p++)
            {
                var pod = new PodSandboxConfig
                {
                    Metadata = new PodSandboxMetadata { Name = $"{name}-stats-{p}", Namespace = "bench", Uid = Guid.NewGuid().ToString() },
                    Linux = new LinuxPodSandboxConfig
                    {
                        // A pod cgroup per pod, as kubelet gives (containerd's pod stats need one).
                        CgroupParent = $"{cgroupRoot}/pod{p}",
                        SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } },
                    },
                };
                var podId = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
                pods.Add(podId);
                for (var i = 0; i < PerPod; i++)
                {
                    var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = $"c{i}" }, Image = new ImageSpec { Image = image } };
                    config.Command.AddRange(["/bin/busybox", "sleep", "3600"]);
                    var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
                    await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
                    containers.Add(id);
                }
            }
            // Two of berthd's default 10 s collection rounds: every container has a CPU baseline and a measured layer.
            await Task.Delay(TimeSpan.FromSeconds(21));

            var listContainers = await Percentile.TimeAsync(calls, async () =>
            {
                var stats = (await runtime.ListContainerStatsAsync(new ListContainerStatsRequest())).Stats;
                if (stats.Count != Pods * PerPod) throw new InvalidOperationException($"{name}: {stats.Count} container stats, not {Pods * PerPod}");
                if (stats.Any(s => s.Memory?.WorkingSetBytes is null || s.Cpu?.UsageCoreNanoSeconds is null))
                    throw new InvalidOperationException($"{name}: container stats without CPU or memory");
            });
            var container = await Percentile.TimeAsync(calls, async () =>
                await runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = containers[containers.Count / 2] }));
            List<double>? listPods;
            try
            {
                listPods = await Percentile.TimeAsync(calls, async () =>
                {
                    var stats = (await runtime.ListPodSandboxStatsAsync(new ListPodSandboxStatsRequest())).Stats;
                    if (stats.Count != Pods) throw new InvalidOperationException($"{name}: {stats.Count} pod stats, not {Pods}");
                });
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unimplemented)
            {
                listPods = null;
            }
            return new Result(listContainers, container, listPods);
        }
        finally
        {
            foreach (var podId in pods)
            {
                await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
                await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
            }
            BenchCgroups.Remove(cgroupRoot);
        }
    }

    private static double P(List<double> values, int percentile) => Percentile.Of(values, percentile);
}
