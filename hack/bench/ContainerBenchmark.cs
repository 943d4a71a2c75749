using System.Diagnostics;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// Containers on berthd and on containerd 1.6, in one run: CreateContainer+StartContainer latency over N
/// containers in one pod, StopContainer and RemoveContainer, ListContainers over many created containers, and
/// the memory (RSS) of a shim and of the daemon idle and with 100 containers running.
/// </summary>
internal static class ContainerBenchmark
{
    public static async Task<string> RunAsync(int containers, int listed)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        var image = await BenchImage.PushSleeperAsync(registry);

        await using var berth = await BerthDaemon.StartAsync();
        await using var containerd = await ContainerdDaemon.StartAsync(registry.Host, sandboxImage: image);
        var b = await MeasureAsync("berth", berth.Runtime, berth.Images, berth.Pid, image, containers, listed, ShimsOf("berth-shim run"));
        Result c;
        try
        {
            c = await MeasureAsync("containerd", containerd.Runtime, containerd.Images, containerd.Pid, image, containers, listed, ShimsOf("containerd-shim-runc-v2"));
        }
        catch (Exception e)
        {
            // Reported before the daemon's disposal, whose own failure would hide it.
            Console.Error.WriteLine($"containerd: {e}");
            throw;
        }
        return $"""
            Containers in one host-network pod, {containers} created and started one after another, then stopped (timeout 0), then removed (ms):
                                       berth p50   p99   | containerd p50   p99   | ratio p50
              Create+StartContainer  {P(b.CreateStart, 50),7:F1} {P(b.CreateStart, 99),6:F1} |       {P(c.CreateStart, 50),7:F1} {P(c.CreateStart, 99),6:F1} | {P(b.CreateStart, 50) / P(c.CreateStart, 50):F2}
              StopContainer          {P(b.Stop, 50),7:F1} {P(b.Stop, 99),6:F1} |       {P(c.Stop, 50),7:F1} {P(c.Stop, 99),6:F1} | {P(b.Stop, 50) / P(c.Stop, 50):F2}
              RemoveContainer        {P(b.Remove, 50),7:F1} {P(b.Remove, 99),6:F1} |       {P(c.Remove, 50),7:F1} {P(c.Remove, 99),6:F1} | {P(b.Remove, 50) / P(c.Remove, 50):F2}
              ListContainers ({listed} created) {P(b.List, 50),5:F1} {P(b.List, 99),6:F1} |       {P(c.List, 50),7:F1} {P(c.List, 99),6:F1} | {P(b.List, 50) / P(c.List, 50):F2}
            Memory (RSS, MiB):                 berth | containerd
              one shim, RSS                   {b.ShimRss,6:F1} | {c.ShimRss,6:F1}   (berth: one shim per container; containerd 1.6: one per pod)
              one shim, PSS                   {b.ShimPss,6:F1} | {c.ShimPss,6:F1}   (shared pages of the binary and libc divided among the shims)
              all shims, 100 containers, PSS  {b.AllShimsPss,6:F1} | {c.AllShimsPss,6:F1}
              daemon idle                     {b.IdleRss,6:F1} | {c.IdleRss,6:F1}
              daemon with 100 containers      {b.LoadedRss,6:F1} | {c.LoadedRss,6:F1}
            """;
    }

    private sealed record Result(
        List<double> CreateStart, List<double> Stop, List<double> Remove, List<double> List,
        double ShimRss, double ShimPss, double AllShimsPss, double IdleRss, double LoadedRss);

    private static Func<int[]> ShimsOf(string pattern) => () => ProcessProbe.Find(pattern);

    private static async Task<Result> MeasureAsync(
        string name, RuntimeService.RuntimeServiceClient runtime, ImageService.ImageServiceClient images, int daemonPid,
        string image, int containers, int listed, Func<int[]> shims)
    {
        await images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var shimsBefore = shims().ToHashSet();
        var pod = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = $"{name}-bench", Namespace = "bench", Uid = Guid.NewGuid().ToString() },
            Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } } },
        };
        var podId = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
        await Task.Delay(2000);
        var idle = ProcessProbe.RssMiB(daemonPid);

        ContainerConfig Config(string container)
        {
            var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = container }, Image = new ImageSpec { Image = image } };
            config.Command.AddRange(["/bin/busybox", "sleep", "3600"]);
            return config;
        }

        var createStart = new List<double>();
        var ids = new List<string>();
        for (var i = 0; i < Math.Max(containers, 100); i++)
        {
            var watch = Stopwatch.StartNew();
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = Config($"c{i}"), SandboxConfig = pod })).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            if (i < containers) createStart.Add(watch.Elapsed.TotalMilliseconds);
            ids.Add(id);
        }
        await Task.Delay(2000);
        var loaded = ProcessProbe.RssMiB(daemonPid);
        var newShims = shims().Where(p => !shimsBefore.Contains(p)).ToList();
        var shimRss = newShims.Count > 0 ? ProcessProbe.RssMiB(newShims[0]) : 0;
        var shimPss = newShims.Count > 0 ? ProcessProbe.PssMiB(newShims[0]) : 0;
        var allShims = ProcessProbe.PssMiB(newShims);

        var stop = new List<double>();
        var remove = new List<double>();
        foreach (var id in ids)
        {
            var watch = Stopwatch.StartNew();
            await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 0 });
            stop.Add(watch.Elapsed.TotalMilliseconds);
        }
        foreach (var id in ids)
        {
            var watch = Stopwatch.StartNew();
            await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
            remove.Add(watch.Elapsed.TotalMilliseconds);
        }

        // Created, not started: listing cost grows with the records, not with running processes.
        var created = new List<string>();
        for (var i = 0; i < listed; i++)
            created.Add((await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = Config($"l{i}"), SandboxConfig = pod })).ContainerId);
        var list = new List<double>();
        for (var i = 0; i < 50; i++)
        {
            var watch = Stopwatch.StartNew();
            var count = (await runtime.ListContainersAsync(new ListContainersRequest())).Containers.Count;
            list.Add(watch.Elapsed.TotalMilliseconds);
            if (count != listed) throw new InvalidOperationException($"{name} listed {count} containers, not {listed}");
        }
        foreach (var id in created) await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        return new Result(createStart[..containers], stop[..containers], remove[..containers], list, shimRss, shimPss, allShims, idle, loaded);
    }

    private static double P(List<double> values, int percentile) => Percentile.Of(values, percentile);
}
