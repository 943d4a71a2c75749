using System.Diagnostics;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// RunPodSandbox, StopPodSandbox and RemovePodSandbox over N pods, one after another, on berthd and on
/// containerd (whose sandboxes are pause containers; here a busybox sleeper from the local registry).
/// Each daemon has its own bridge and subnet.
/// </summary>
internal static class SandboxBenchmark
{
    public static async Task<string> RunAsync(int pods)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        using var pusher = new RegistryPusher(registry);
        var pause = new TestImageBuilder().Layer(TestLayers.Base()).Build();
        await pusher.PushAsync("bench/pause", pause, "1");
        var pauseRef = $"{registry.Host}/bench/pause:1";

        await using var berth = await BerthDaemon.StartAsync();
        using var berthNetwork = TestNetwork.Create(berth);
        var ctdNet = Directory.CreateTempSubdirectory("berth-bench-cni-").FullName;
        var ctdBridge = $"bc{Random.Shared.Next(0, 0xFFFFFF):x6}";
        await File.WriteAllTextAsync(Path.Combine(ctdNet, "10-bench.conflist"),
            $$$"""{"cniVersion":"1.0.0","name":"ctd-bench","plugins":[{"type":"bridge","bridge":"{{{ctdBridge}}}","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","dataDir":"{{{ctdNet}}}/ipam","ranges":[[{"subnet":"10.252.{{{Random.Shared.Next(1, 250)}}}.0/24"}]]}}]}""");
        try
        {
            await using var containerd = await ContainerdDaemon.StartAsync(registry.Host, ctdNet, pauseRef);
            await containerd.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = pauseRef } });

            var b = await MeasureAsync(berth.Runtime, pods, "b");
            var c = await MeasureAsync(containerd.Runtime, pods, "c");
            return $"""
                Pod sandboxes, {pods} created one after another, then stopped, then removed (ms):
                                 berth p50   p99   | containerd p50   p99   | ratio p50
                  RunPodSandbox    {P(b.Run, 50),7:F1} {P(b.Run, 99),6:F1} |       {P(c.Run, 50),7:F1} {P(c.Run, 99),6:F1} | {P(b.Run, 50) / P(c.Run, 50):F2}
                  StopPodSandbox   {P(b.Stop, 50),7:F1} {P(b.Stop, 99),6:F1} |       {P(c.Stop, 50),7:F1} {P(c.Stop, 99),6:F1} | {P(b.Stop, 50) / P(c.Stop, 50):F2}
                  RemovePodSandbox {P(b.Remove, 50),7:F1} {P(b.Remove, 99),6:F1} |       {P(c.Remove, 50),7:F1} {P(c.Remove, 99),6:F1} | {P(b.Remove, 50) / P(c.Remove, 50):F2}
                """;
        }
        finally
        {
            Host.Run("ip", "link", "delete", ctdBridge);
            Directory.Delete(ctdNet, recursive: true);
        }
    }

    private static async Task<(List<double> Run, List<double> Stop, List<double> Remove)> MeasureAsync(RuntimeService.RuntimeServiceClient runtime, int pods, string prefix)
    {
        var (run, stop, remove) = (new List<double>(), new List<double>(), new List<double>());
        var ids = new List<string>();
        for (var i = 0; i < pods; i++)
        {
            var config = new PodSandboxConfig
            {
                Metadata = new PodSandboxMetadata { Name = $"{prefix}-bench-{i}", Namespace = "bench", Uid = Guid.NewGuid().ToString() },
                Hostname = $"{prefix}-bench-{i}",
                Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Pid = NamespaceMode.Container } } },
            };
            var watch = Stopwatch.StartNew();
            ids.Add((await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId);
            run.Add(watch.Elapsed.TotalMilliseconds);
        }
        foreach (var id in ids)
        {
            var watch = Stopwatch.StartNew();
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
            stop.Add(watch.Elapsed.TotalMilliseconds);
        }
        foreach (var id in ids)
        {
            var watch = Stopwatch.StartNew();
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
            remove.Add(watch.Elapsed.TotalMilliseconds);
        }
        return (run, stop, remove);
    }

    private static double P(List<double> values, int percentile) => Percentile.Of(values, percentile);
}
