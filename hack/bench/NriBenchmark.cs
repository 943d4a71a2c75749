using System.Diagnostics;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// What NRI costs pod start on berthd: RunPodSandbox, CreateContainer and StartContainer with no plugin, with one
/// external plugin subscribed to every event (it adds an env var at CreateContainer), and with three such plugins;
/// CreateContainer alone beside it, where plugins adjust the spec before runc create. containerd 1.6, Debian's, has no
/// NRI, so there is no ratio here: the yardstick is runc's own share of CreateContainer.
/// </summary>
internal static class NriBenchmark
{
    /// <summary>Every pod and container event; not ValidateContainerAdjustment, which makes a plugin a validator.</summary>
    private static readonly List<string> LifecycleEvents =
    [
        "RunPodSandbox", "UpdatePodSandbox", "PostUpdatePodSandbox", "StopPodSandbox", "RemovePodSandbox", "CreateContainer", "PostCreateContainer",
        "StartContainer", "PostStartContainer", "UpdateContainer", "PostUpdateContainer", "StopContainer", "RemoveContainer",
    ];

    public static async Task<string> RunAsync(int rounds)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        var image = await BenchImage.PushSleeperAsync(registry);
        await using var berth = await BerthDaemon.StartAsync(new DaemonOptions { LogLevel = "info" });
        await berth.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var plugins = new List<NriPluginProcess>();
        try
        {
            var results = new List<(string Label, List<double> Pod, List<double> Create)>();
            foreach (var count in new[] { 0, 1, 3 })
            {
                while (plugins.Count < count)
                {
                    var index = $"{10 * (plugins.Count + 1)}";
                    plugins.Add(await NriPluginProcess.ConnectAsync(berth, index, "bench", new()
                    {
                        ["env"] = new Dictionary<string, string> { [$"NRI_BENCH_{index}"] = "1" },
                        ["events"] = LifecycleEvents,
                    }, record: false));
                }
                await MeasureAsync(berth, image, 3); // warm-up
                var (pod, create) = await MeasureAsync(berth, image, rounds);
                results.Add((count == 0 ? "no plugin" : count == 1 ? "1 plugin, every event" : $"{count} plugins, every event", pod, create));
            }
            var baseline = results[0];
            var lines = results.Select(r =>
                $"  {r.Label,-26} {P(r.Pod, 50),7:F1} {P(r.Pod, 99),7:F1}   {P(r.Create, 50),7:F1} {P(r.Create, 99),7:F1}   {P(r.Create, 50) - P(baseline.Create, 50),+6:F1} {P(r.Pod, 50) - P(baseline.Pod, 50),+6:F1}");
            return $"""
                NRI on berthd, {rounds} pods each (host network, one sleeping container), external test plugins (ms):
                                               pod start        CreateContainer     NRI's p50 cost
                                               p50     p99      p50     p99        create  pod start
                {string.Join('\n', lines)}
                """;
        }
        finally
        {
            foreach (var plugin in plugins) plugin.Dispose();
        }
    }

    /// <summary>Pod start (RunPodSandbox, CreateContainer, StartContainer) and CreateContainer alone, per pod.</summary>
    private static async Task<(List<double> Pod, List<double> Create)> MeasureAsync(BerthDaemon berth, string image, int pods)
    {
        List<double> pod = [], create = [];
        for (var i = 0; i < pods; i++)
        {
            var config = new PodSandboxConfig
            {
                Metadata = new PodSandboxMetadata { Name = $"nri-bench-{i}", Namespace = "bench", Uid = Guid.NewGuid().ToString() },
                Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } } },
            };
            var watch = Stopwatch.StartNew();
            var podId = (await berth.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
            var beforeCreate = watch.Elapsed.TotalMilliseconds;
            var container = new ContainerConfig { Metadata = new ContainerMetadata { Name = "app" }, Image = new ImageSpec { Image = image } };
            var id = (await berth.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = container, SandboxConfig = config })).ContainerId;
            create.Add(watch.Elapsed.TotalMilliseconds - beforeCreate);
            await berth.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            pod.Add(watch.Elapsed.TotalMilliseconds);
            await berth.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await berth.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        }
        return (pod, create);
    }

    private static double P(List<double> values, int percentile) => Percentile.Of(values, percentile);
}
