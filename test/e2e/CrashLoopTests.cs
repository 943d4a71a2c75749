using System.Collections.Concurrent;
using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// kill -9 berthd at seeded random moments while pods, containers and pulls churn; after each restart the listed
/// state must match the world (a Ready pod has its netns and its IP, a Running container a live process, leases and
/// veths only for Ready pods, shims only for live containers), and after the last round removing everything through
/// CRI must leave nothing: mounts, veths, leases, netns pins, shims, runtime state, cgroups, blobs.
/// </summary>
public sealed class CrashLoopTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Rounds = 16;
    private const int Seed = 20261201;

    [Fact]
    public async Task Kill_9_at_random_moments_of_churn_loses_nothing_and_leaks_nothing()
    {
        var directory = Directory.CreateTempSubdirectory("be-crash-").FullName;
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        using var pusher = new RegistryPusher(registry);
        var applets = TestLayers.Tar(w =>
        {
            TestLayers.Dir(w, "bin/");
            TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, "bin/sleep", "busybox");
        });
        await pusher.PushAsync("busybox", new TestImageBuilder().Layer(TestLayers.Base()).Layer(applets).Build(), "crash");
        // Pulled and removed in the loop: a layer of its own each, so a kill can land mid-download or mid-unpack.
        for (var i = 0; i < 4; i++)
            await pusher.PushAsync("pulled", new TestImageBuilder().Layer(TestLayers.OneFile($"f{i}", new string((char)('a' + i), 300_000))).Build(), $"v{i}");
        var image = $"{registry.Host}/busybox:crash";
        var options = new DaemonOptions { Directory = directory };
        var random = new Random(Seed);
        var phases = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var vethsBefore = Host.VethCount();
        TestNetwork? network = null;
        try
        {
            for (var round = 0; round < Rounds; round++)
            {
                await using var daemon = await BerthDaemon.StartAsync(options);
                network ??= TestNetwork.Create(daemon);
                if (round == 0) await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
                else await CheckWorldAsync(daemon, network, directory, vethsBefore, round);

                using var stop = new CancellationTokenSource();
                var step = new string[3];
                var workers = new[]
                {
                    ChurnAsync(daemon, image, round, 0, keep: false, step, stop.Token),
                    ChurnAsync(daemon, image, round, 1, keep: true, step, stop.Token),
                    PullAsync(daemon, registry.Host, round, step, stop.Token),
                };
                await Task.Delay(random.Next(150, 2500));
                foreach (var s in step) phases.AddOrUpdate(s ?? "idle", 1, (_, n) => n + 1);
                daemon.Signal(Tmds.Linux.LibC.SIGKILL);
                await daemon.WaitForExitAsync(TimeSpan.FromSeconds(20));
                stop.Cancel();
                await Task.WhenAll(workers);
            }

            await using (var last = await BerthDaemon.StartAsync(options))
            {
                await CheckWorldAsync(last, network!, directory, vethsBefore, Rounds);
                await last.RemoveEverythingAsync();
                foreach (var pulled in (await last.Images.ListImagesAsync(new ListImagesRequest())).Images)
                    await last.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = pulled.Id } });
                Assert.Empty(network!.Leases());
                Assert.Equal(vethsBefore, Host.VethCount());
                Assert.Empty(Host.MountsUnder(directory));
                Assert.Empty(Shims(directory));
                Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(last.StatePath, "sandboxes")));
                Assert.Empty(Directory.EnumerateDirectories(Path.Combine(last.StatePath, "containers", "runtime", "default")));
                Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(last.RootPath, "content", "blobs", "sha256")));
                Assert.Empty(Directory.EnumerateDirectories(Path.Combine(last.RootPath, "snapshots")).Select(Path.GetFileName).Except(["ingest", "trash"]));
                Assert.Empty(Directory.EnumerateFiles(Path.Combine(last.RootPath, "cni", "cache")));
            }
            output.WriteLine($"{Rounds} kills; in flight at the kills: {string.Join(", ", phases.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {p.Value}"))}");
        }
        finally
        {
            foreach (var pid in Shims(directory)) Host.Run("kill", "-9", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            foreach (var mount in Host.MountsUnder(directory).Reverse()) Host.Run("umount", "-l", mount);
            network?.Dispose();
            Berth.Native.FileTree.Remove(directory);
        }
    }

    private static int[] Shims(string directory) =>
        Host.Run("pgrep", "-f", $"berth-shim .*{directory}/") is { ExitCode: 0 } found
            ? [.. found.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)]
            : [];

    private static PodSandboxConfig Pod(string name) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "crash", Uid = Guid.NewGuid().ToString() },
        Hostname = name,
        Linux = new LinuxPodSandboxConfig(),
    };

    private static ContainerConfig Container(string name, string image)
    {
        var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = name }, Image = new ImageSpec { Image = image } };
        config.Command.AddRange(["sleep", "3600"]);
        return config;
    }

    /// <summary>runp, create, start, stop, rm, stopp, rmp in a loop; with <paramref name="keep"/>, the last pod stays running.</summary>
    private static async Task ChurnAsync(BerthDaemon daemon, string image, int round, int worker, bool keep, string[] step, CancellationToken cancellationToken)
    {
        var rpc = daemon.Runtime;
        try
        {
            for (var i = 0; !cancellationToken.IsCancellationRequested; i++)
            {
                var pod = Pod($"r{round}-w{worker}-{i}");
                step[worker] = "RunPodSandbox";
                var podId = (await rpc.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod }, cancellationToken: cancellationToken)).PodSandboxId;
                step[worker] = "CreateContainer";
                var id = (await rpc.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = Container("c", image), SandboxConfig = pod }, cancellationToken: cancellationToken)).ContainerId;
                step[worker] = "StartContainer";
                await rpc.StartContainerAsync(new StartContainerRequest { ContainerId = id }, cancellationToken: cancellationToken);
                if (keep && i % 3 == 2) continue; // every third pod stays up, to be found running after the kill
                step[worker] = "StopContainer";
                await rpc.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 0 }, cancellationToken: cancellationToken);
                step[worker] = "RemoveContainer";
                await rpc.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, cancellationToken: cancellationToken);
                step[worker] = "StopPodSandbox";
                await rpc.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId }, cancellationToken: cancellationToken);
                step[worker] = "RemovePodSandbox";
                await rpc.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId }, cancellationToken: cancellationToken);
            }
        }
        catch (RpcException e) when (Killed(e, cancellationToken))
        {
            // The kill cut the call short; that is the point.
        }
    }

    /// <summary>The call died with berthd: the connection went (Unavailable) or the test stopped waiting. Any other status is a failure.</summary>
    private static bool Killed(RpcException e, CancellationToken cancellationToken) =>
        e.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled || cancellationToken.IsCancellationRequested;

    private static async Task PullAsync(BerthDaemon daemon, string registry, int round, string[] step, CancellationToken cancellationToken)
    {
        try
        {
            for (var i = 0; !cancellationToken.IsCancellationRequested; i++)
            {
                var image = new ImageSpec { Image = $"{registry}/pulled:v{(round + i) % 4}" };
                step[2] = "PullImage";
                await daemon.Images.PullImageAsync(new PullImageRequest { Image = image }, cancellationToken: cancellationToken);
                step[2] = "RemoveImage";
                await daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = image }, cancellationToken: cancellationToken);
            }
        }
        catch (RpcException e) when (Killed(e, cancellationToken))
        {
        }
    }

    /// <summary>What berthd lists after a restart is what there is, and nothing else is held.</summary>
    private static async Task CheckWorldAsync(BerthDaemon daemon, TestNetwork network, string directory, int vethsBefore, int round)
    {
        var pods = (await daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items;
        var ready = pods.Where(p => p.State == PodSandboxState.SandboxReady).ToList();
        var leases = network.Leases();
        foreach (var pod in ready)
        {
            var pin = Path.Combine(daemon.StatePath, "sandboxes", pod.Id, "ns", "net");
            Assert.True(Host.Run("stat", "-f", "-c", "%T", pin).Output.Trim() == "nsfs", $"round {round}: Ready pod {pod.Id} has no network namespace at {pin}");
            var ip = (await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod.Id })).Status.Network.Ip;
            Assert.True(leases.Contains(ip), $"round {round}: Ready pod {pod.Id} reports {ip}, which host-local does not hold ({string.Join(' ', leases)})");
        }
        // Leases and veths belong to Ready pods alone: a pod that a kill caught mid-stop was finished at startup.
        Assert.True(leases.Count == ready.Count, $"round {round}: {leases.Count} leases for {ready.Count} Ready pods of {pods.Count}");
        Assert.Equal(vethsBefore + ready.Count, Host.VethCount());

        var containers = (await daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers;
        var live = 0;
        foreach (var container in containers.Where(c => c.State is ContainerState.ContainerRunning or ContainerState.ContainerCreated))
        {
            live++;
            if (container.State != ContainerState.ContainerRunning) continue;
            var status = await daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = container.Id, Verbose = true });
            using var info = JsonDocument.Parse(status.Info["info"]);
            var pid = info.RootElement.GetProperty("pid").GetInt32();
            Assert.True(File.Exists($"/proc/{pid}/stat"), $"round {round}: Running container {container.Id} has no process {pid}");
        }
        // A shim lives exactly as long as its container (an exited one's shim leaves within a moment).
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Shims(directory).Length != live && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.True(Shims(directory).Length == live, $"round {round}: {Shims(directory).Length} shims for {live} live containers");
        // Every blob belongs to a listed image's record: an interrupted pull's are collected at startup.
        var named = new HashSet<string>(StringComparer.Ordinal);
        foreach (var record in Directory.EnumerateFiles(Path.Combine(daemon.RootPath, "images"), "*.json"))
        {
            using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(record));
            foreach (var property in json.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.String && property.Value.GetString()!.StartsWith("sha256:", StringComparison.Ordinal))
                    named.Add(property.Value.GetString()!["sha256:".Length..]);
                else if (property.Value.ValueKind == JsonValueKind.Array)
                    named.UnionWith(property.Value.EnumerateArray().Select(v => v.ToString()).Select(v => v[(v.LastIndexOf(':') + 1)..]));
            }
        }
        var blobs = Directory.EnumerateFiles(Path.Combine(daemon.RootPath, "content", "blobs", "sha256")).Select(Path.GetFileName).ToList();
        Assert.True(blobs.All(b => named.Contains(b!)), $"round {round}: blobs no image names: {string.Join(' ', blobs.Where(b => !named.Contains(b!)))}");
        // Every overlay still mounted belongs to a listed container.
        var rootfsMounts = Host.MountsUnder(Path.Combine(daemon.StatePath, "c")).Where(m => m.EndsWith("/rootfs", StringComparison.Ordinal)).ToList();
        foreach (var mount in rootfsMounts)
        {
            var id = Path.GetFileName(Path.GetDirectoryName(mount)!);
            Assert.True(containers.Any(c => c.Id == id), $"round {round}: rootfs {mount} is mounted for no listed container");
        }
    }
}
