using System.Diagnostics;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Net.Client;

namespace Berth.Bench;

/// <summary>
/// The node shape, pure cgroup v2 (the hack/node-vm guest the e2e tests boot): berthd and containerd 1.6 side by
/// side in one guest, each driven through its CRI socket, with runc and with crun. Create+StartContainer over N
/// containers in one host-network pod, then ListContainerStats over them and ContainerStats of one. The guest runs
/// under qemu's software emulation, many times slower than this machine, so only ratios are reported.
/// </summary>
internal static class NodeBenchmark
{
    private const int ContainerdPort = 10020;
    private const string ContainerdDirectory = "/run/containerd-bench";

    public static async Task<string> RunAsync(int containers, int calls)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        var image = await BenchImage.PushSleeperAsync(registry);
        // containerd is started by the guest's script; its config is read from this machine's /tmp, which the guest shares.
        var containerdConfig = Directory.CreateTempSubdirectory("berth-bench-node-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(containerdConfig, "containerd.toml"), ContainerdDaemon.Config(
                ContainerdDirectory, "/var/lib/berth/containerd-bench", $"{ContainerdDirectory}/state", registry.Host, $"{ContainerdDirectory}/cni", image));
            return await RunInGuestAsync(registry, image, containers, calls, Path.Combine(containerdConfig, "containerd.toml"));
        }
        finally
        {
            Directory.Delete(containerdConfig, recursive: true);
        }
    }

    /// <summary>Boots the guest with containerd beside berthd, measures both under each handler, and writes the table.</summary>
    private static async Task<string> RunInGuestAsync(RegistryServer registry, string image, int containers, int calls, string containerdConfig)
    {
        TestEnvironment.RequireTool("/usr/bin/containerd", "containerd");
        await using var vm = await NodeVm.StartAsync(new NodeVmOptions
        {
            RegistryPort = registry.Port,
            ForwardedPorts = [ContainerdPort],
            GuestCommands = $"""
                mkdir -p {ContainerdDirectory}/cni
                containerd --config {containerdConfig} >{ContainerdDirectory}/containerd.log 2>&1 &
                socat TCP-LISTEN:{ContainerdPort},fork,reuseaddr UNIX-CONNECT:{ContainerdDirectory}/containerd.sock &
                """,
            ExtraConfig = "[runtime]\ndefault_handler = \"runc\"\n[runtime.handlers.runc]\nbinary = \"/usr/sbin/runc\"\n"
                          + "[runtime.handlers.crun]\nbinary = \"/usr/bin/crun\"\n",
        });
        using var containerd = await ConnectContainerdAsync(vm);
        var containerdRuntime = new RuntimeService.RuntimeServiceClient(containerd);
        var containerdImages = new ImageService.ImageServiceClient(containerd);

        var rows = new List<(string Handler, Result Berth, Result Containerd)>();
        foreach (var handler in new[] { "runc", "crun" })
        {
            var b = await MeasureAsync("berth", vm.Runtime, vm.Images, image, handler, containers, calls);
            var c = await MeasureAsync("containerd", containerdRuntime, containerdImages, image, handler, containers, calls);
            rows.Add((handler, b, c));
        }
        string Row(string label, Func<Result, List<double>> figure) =>
            ($"  {label,-26}" + string.Concat(rows.Select(r => $"{P(figure(r.Berth)) / P(figure(r.Containerd)),6:F2}  ({P(figure(r.Berth)),6:F0} / {P(figure(r.Containerd)),6:F0})   "))).TrimEnd();
        return string.Join(Environment.NewLine,
            $"The node shape: pure cgroup v2 guest (qemu TCG, cgroupfs driver), berthd and containerd 1.6 in the same guest, {containers} containers in one host-network pod,",
            $"{calls} stats calls each; ratio berth/containerd of p50 (berth ms / containerd ms; TCG times are not this machine's):",
            "                              runc                          crun",
            Row("Create+StartContainer", r => r.CreateStart),
            Row($"ListContainerStats ({containers})", r => r.ListStats),
            Row("ContainerStats (one)", r => r.Stats));
    }

    private sealed record Result(List<double> CreateStart, List<double> ListStats, List<double> Stats);

    /// <summary>containerd in the guest (its root on the guest's disk: an overlay upper dir can't sit on the guest's overlay root), once it answers.</summary>
    private static async Task<GrpcChannel> ConnectContainerdAsync(NodeVm vm)
    {
        var channel = vm.ChannelTo(ContainerdPort);
        var runtime = new RuntimeService.RuntimeServiceClient(channel);
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await runtime.VersionAsync(new VersionRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                return channel;
            }
            catch (Grpc.Core.RpcException) when (watch.Elapsed < TimeSpan.FromMinutes(2))
            {
                await Task.Delay(500);
            }
            catch (Grpc.Core.RpcException e)
            {
                channel.Dispose();
                throw new TimeoutException($"containerd in the guest did not answer ({e.Status.Detail}):\n"
                                           + await vm.ShellAsync($"tail -30 {ContainerdDirectory}/containerd.log"));
            }
        }
    }

    private static async Task<Result> MeasureAsync(
        string name, RuntimeService.RuntimeServiceClient runtime, ImageService.ImageServiceClient images, string image, string handler, int containers, int calls)
    {
        await images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var pod = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = $"{name}-{handler}-node", Namespace = "bench", Uid = Guid.NewGuid().ToString() },
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = $"/bench-{name}-{handler}",
                SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } },
            },
        };
        var podId = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod, RuntimeHandler = handler })).PodSandboxId;
        try
        {
            var createStart = new List<double>();
            var ids = new List<string>();
            for (var i = 0; i < containers; i++)
            {
                var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = $"c{i}" }, Image = new ImageSpec { Image = image } };
                config.Command.AddRange(["/bin/busybox", "sleep", "3600"]);
                var watch = Stopwatch.StartNew();
                var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
                await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
                createStart.Add(watch.Elapsed.TotalMilliseconds);
                ids.Add(id);
            }
            // Two of berthd's default 10 s collection rounds, so every container has a CPU baseline.
            await Task.Delay(TimeSpan.FromSeconds(21));
            var listStats = await Percentile.TimeAsync(calls, async () =>
            {
                var stats = (await runtime.ListContainerStatsAsync(new ListContainerStatsRequest())).Stats;
                if (stats.Count != containers) throw new InvalidOperationException($"{name}: {stats.Count} container stats, not {containers}");
            });
            var one = await Percentile.TimeAsync(calls, async () => await runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = ids[^1] }));
            return new Result(createStart, listStats, one);
        }
        finally
        {
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        }
    }


    private static double P(List<double> values) => Percentile.Of(values, 50);
}
