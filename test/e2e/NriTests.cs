using System.Net.Sockets;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// NRI through the socket, with the test plugin (a process of its own on Berth.Nri's transport) as external and as
/// pre-registered plugin: events in order with the pod's and container's data, adjustments seen inside the container,
/// conflicts, hanging and garbling plugins, required plugins, old stubs, and a restart's re-synchronization.
/// </summary>
public sealed class NriTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private async Task<BerthDaemon> DaemonAsync(string nriConfig = "", string? directory = null)
    {
        var daemon = await BerthDaemon.StartAsync(new DaemonOptions { NriConfig = nriConfig, Directory = directory });
        await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Image } });
        return daemon;
    }

    private static async Task<string> RunPodAsync(BerthDaemon daemon, PodSandboxConfig pod) =>
        (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;

    private static async Task<string> CreateAsync(BerthDaemon daemon, string podId, PodSandboxConfig pod, ContainerConfig config) =>
        (await daemon.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;

    private static async Task<string> ShAsync(BerthDaemon daemon, string id, string script)
    {
        var request = new ExecSyncRequest { ContainerId = id, Timeout = 10 };
        request.Cmd.AddRange(["sh", "-c", script]);
        var result = await daemon.Runtime.ExecSyncAsync(request);
        Assert.True(result.ExitCode == 0, $"`{script}` exited {result.ExitCode}: {result.Stdout.ToStringUtf8()}{result.Stderr.ToStringUtf8()}");
        return result.Stdout.ToStringUtf8().Trim();
    }

    private static async Task RemovePodAsync(BerthDaemon daemon, string podId)
    {
        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
    }

    [Fact]
    public async Task Events_arrive_in_order_with_the_pods_data_and_adjustments_reach_the_container()
    {
        await using var daemon = await DaemonAsync();
        var data = Directory.CreateTempSubdirectory("berth-nri-data-").FullName;
        File.WriteAllText(Path.Combine(data, "from-plugin"), "mounted by NRI\n");
        using var plugin = await NriPluginProcess.ConnectAsync(daemon, "10", "adjuster", new()
        {
            ["env"] = new Dictionary<string, string> { ["NRI_INJECTED"] = "yes" },
            ["removeEnv"] = new List<string> { "DROPPED" },
            ["annotations"] = new Dictionary<string, string> { ["nri.example/touched"] = "true" },
            ["mounts"] = new[] { new { destination = "/nri-data", source = data, type = "bind", options = new List<string> { "bind", "ro" } } },
            ["cpuset"] = "0",
            ["rlimits"] = new[] { new { type = "RLIMIT_NOFILE", hard = 4321, soft = 1234 } },
            ["updateCpuQuota"] = 30000,
        });
        try
        {
            var pod = bed.Pod("nri-events", hostNetwork: true);
            pod.Labels["app"] = "nri";
            var podId = await RunPodAsync(daemon, pod);
            var config = bed.Container("app", "sleep", "600");
            config.Envs.Add(new Cri.V1.KeyValue { Key = "DROPPED", Value = Google.Protobuf.ByteString.CopyFromUtf8("x") });
            config.Envs.Add(new Cri.V1.KeyValue { Key = "KEPT", Value = Google.Protobuf.ByteString.CopyFromUtf8("y") });
            var id = await CreateAsync(daemon, podId, pod, config);
            await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });

            Assert.Equal("yes - y", await ShAsync(daemon, id, "echo $NRI_INJECTED ${DROPPED:--} $KEPT"));
            Assert.Equal("mounted by NRI", await ShAsync(daemon, id, "cat /nri-data/from-plugin"));
            Assert.NotEqual(0, (await daemon.Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Timeout = 10, Cmd = { "sh", "-c", "touch /nri-data/x" } })).ExitCode);
            Assert.Equal("0", await ShAsync(daemon, id, "grep Cpus_allowed_list /proc/self/status | cut -f2"));
            Assert.Matches(@"^Max open files\s+1234\s+4321\s+files$", await ShAsync(daemon, id, "grep 'Max open files' /proc/1/limits"));
            var spec = File.ReadAllText(Directory.GetFiles(Path.Combine(daemon.Directory, "state"), "config.json", SearchOption.AllDirectories).Single(f => f.Contains(id, StringComparison.Ordinal)));
            Assert.Contains("\"nri.example/touched\": \"true\"", spec, StringComparison.Ordinal);

            // An update the plugin changes: its CPU quota is what the container gets.
            await daemon.Runtime.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
            {
                ContainerId = id, Linux = new LinuxContainerResources { CpuPeriod = 100000, CpuQuota = 50000 },
            });
            var status = await daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id });
            Assert.Equal(30000, status.Status.Resources.Linux.CpuQuota);

            await daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 0 });
            await daemon.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
            await RemovePodAsync(daemon, podId);

            Assert.Equal(
            [
                "Configure runtime=berth nri=v0.12.2 requestTimeout=2000",
                "Synchronize pods= containers=",
                "RunPodSandbox pod=nri-events container=",
                "CreateContainer pod=nri-events container=app",
                "PostCreateContainer pod=nri-events container=app",
                "StartContainer pod=nri-events container=app",
                "PostStartContainer pod=nri-events container=app",
                "UpdateContainer pod=nri-events container=app",
                "PostUpdateContainer pod=nri-events container=app",
                "StopContainer pod=nri-events container=app",
                "RemoveContainer pod=nri-events container=app",
                "StopPodSandbox pod=nri-events container=",
                "RemovePodSandbox pod=nri-events container=",
            ], plugin.Events());
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task A_plugin_asks_for_a_CDI_device_and_the_container_gets_its_node_and_env()
    {
        var specs = Directory.CreateTempSubdirectory("berth-nri-cdi-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(specs, "nri.json"), """
                {
                  "cdiVersion": "0.6.0",
                  "kind": "vendor.example/nri",
                  "devices": [ { "name": "a", "containerEdits": { "env": ["FROM_CDI=a"], "deviceNodes": [ { "path": "/dev/nri-cdi", "hostPath": "/dev/null" } ] } } ]
                }
                """);
            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { ExtraConfig = $"[cdi]\nspec_dirs = [\"{specs}\"]\n" });
            await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Image } });
            using var plugin = await NriPluginProcess.ConnectAsync(daemon, "10", "devices", new() { ["cdiDevices"] = new List<string> { "vendor.example/nri=a" } });
            var pod = bed.Pod("nri-cdi", hostNetwork: true);
            var podId = await RunPodAsync(daemon, pod);
            var id = await CreateAsync(daemon, podId, pod, bed.Container("app", "sleep", "600"));
            await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            Assert.Equal("a", await ShAsync(daemon, id, "echo $FROM_CDI"));
            Assert.Equal("character special file 1 3", await ShAsync(daemon, id, "stat -c '%F %t %T' /dev/nri-cdi"));
            await RemovePodAsync(daemon, podId);
        }
        finally
        {
            Directory.Delete(specs, recursive: true);
        }
    }

    [Fact]
    public async Task Two_plugins_setting_one_field_fail_the_create_with_both_names_and_leave_nothing()
    {
        await using var daemon = await DaemonAsync();
        using var first = await NriPluginProcess.ConnectAsync(daemon, "10", "first", new() { ["env"] = new Dictionary<string, string> { ["SHARED"] = "1" } });
        using var second = await NriPluginProcess.ConnectAsync(daemon, "20", "second", new() { ["env"] = new Dictionary<string, string> { ["SHARED"] = "2" } });
        var pod = bed.Pod("nri-conflict", hostNetwork: true);
        var podId = await RunPodAsync(daemon, pod);
        var error = await Assert.ThrowsAsync<RpcException>(() => CreateAsync(daemon, podId, pod, bed.Container("app", "sleep", "600")));
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("\"20-second\" and \"10-first\" both tried to set Env SHARED", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers);
        Assert.Empty(Directory.GetFiles(Path.Combine(daemon.Directory, "state"), "config.json", SearchOption.AllDirectories));
        await RemovePodAsync(daemon, podId);
    }

    [Fact]
    public async Task A_hanging_plugin_is_dropped_after_the_request_timeout_and_garbage_on_the_socket_harms_nothing()
    {
        // NRI's default timeout: a shorter one could drop the healthy plugin too while it JITs its first calls on a busy machine.
        await using var daemon = await DaemonAsync("plugin_request_timeout = \"2s\"\n");
        using var hanging = await NriPluginProcess.ConnectAsync(daemon, "10", "hangs", new() { ["hangOn"] = "CreateContainer" });
        using var healthy = await NriPluginProcess.ConnectAsync(daemon, "20", "healthy", new() { ["env"] = new Dictionary<string, string> { ["HEALTHY"] = "1" } });
        // A peer that sends no NRI at all: a mux chunk header with an absurd length, then random bytes.
        using (var garbage = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await garbage.ConnectAsync(new UnixDomainSocketEndPoint(daemon.NriSocket));
            await garbage.SendAsync(new byte[] { 0, 0, 0, 1, 0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3 });
        }

        var pod = bed.Pod("nri-hang", hostNetwork: true);
        var podId = await RunPodAsync(daemon, pod);
        var started = DateTime.UtcNow;
        var id = await CreateAsync(daemon, podId, pod, bed.Container("app", "sleep", "600"));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10), "the create waited on the hanging plugin past its timeout");
        await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        Assert.Equal("1", await ShAsync(daemon, id, "echo $HEALTHY"));
        await NriPluginProcess.WaitConnectedAsync(daemon, "10-hangs", connected: false);
        Assert.Contains("NRI plugin 10-hangs dropped: CreateContainer failed", daemon.Output, StringComparison.Ordinal);

        // Pods keep starting, without it.
        var next = await CreateAsync(daemon, podId, pod, bed.Container("next", "sleep", "600"));
        Assert.NotEmpty(next);
        Assert.Equal(2, healthy.Events().Count(e => e.StartsWith("CreateContainer", StringComparison.Ordinal)));
        await RemovePodAsync(daemon, podId);
    }

    [Fact]
    public async Task A_plugin_that_refuses_a_create_fails_it_precisely()
    {
        await using var daemon = await DaemonAsync();
        using var plugin = await NriPluginProcess.ConnectAsync(daemon, "30", "refuser", new() { ["failOn"] = "CreateContainer" });
        var pod = bed.Pod("nri-refused", hostNetwork: true);
        var podId = await RunPodAsync(daemon, pod);
        var error = await Assert.ThrowsAsync<RpcException>(() => CreateAsync(daemon, podId, pod, bed.Container("app", "sleep", "600")));
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("NRI plugin 30-refuser failed CreateContainer: 30-refuser refuses CreateContainer", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers);
        await RemovePodAsync(daemon, podId);
    }

    [Fact]
    public async Task A_validator_sees_the_merged_adjustment_and_its_rejection_fails_the_create()
    {
        await using var daemon = await DaemonAsync();
        using var adjuster = await NriPluginProcess.ConnectAsync(daemon, "10", "adjuster", new() { ["env"] = new Dictionary<string, string> { ["A"] = "1" } });
        using var validator = await NriPluginProcess.ConnectAsync(daemon, "90", "validator", new()
        {
            ["events"] = new List<string> { "ValidateContainerAdjustment" },
            ["reject"] = "policy forbids env",
        });
        var pod = bed.Pod("nri-validate", hostNetwork: true);
        var podId = await RunPodAsync(daemon, pod);
        var error = await Assert.ThrowsAsync<RpcException>(() => CreateAsync(daemon, podId, pod, bed.Container("app", "sleep", "600")));
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("NRI validator 90-validator rejected the adjustment of container app: policy forbids env", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("Validate container=app plugins=10-adjuster,90-validator env=A", validator.Events());
        Assert.Empty((await daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers);
        await RemovePodAsync(daemon, podId);
    }

    [Fact]
    public async Task A_plugin_updates_and_evicts_containers_on_its_own()
    {
        await using var daemon = await DaemonAsync();
        var pod = bed.Pod("nri-unsolicited", hostNetwork: true);
        var podId = await RunPodAsync(daemon, pod);
        using (var updater = await NriPluginProcess.ConnectAsync(daemon, "10", "updater", new() { ["updateSharesAfterStart"] = 512 }))
        {
            var id = await CreateAsync(daemon, podId, pod, bed.Container("updated", "sleep", "600"));
            await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            await updater.WaitForEventAsync("UpdateContainers failed=0");
            var status = await daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id });
            Assert.Equal(512, status.Status.Resources.Linux.CpuShares);
        }
        await NriPluginProcess.WaitConnectedAsync(daemon, "10-updater", connected: false);
        using (var evicter = await NriPluginProcess.ConnectAsync(daemon, "20", "evicter", new() { ["evictAfterStart"] = "node pressure" }))
        {
            var id = await CreateAsync(daemon, podId, pod, bed.Container("evicted", "sleep", "600"));
            await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            await evicter.WaitForEventAsync("UpdateContainers failed=0");
            var status = await daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id });
            Assert.Equal(ContainerState.ContainerExited, status.Status.State);
            Assert.Contains("NRI evicts container " + id + ": node pressure", daemon.Output, StringComparison.Ordinal);
        }
        await RemovePodAsync(daemon, podId);
    }

    [Fact]
    public async Task A_live_listener_on_the_NRI_socket_stops_startup_naming_the_key()
    {
        var directory = Directory.CreateTempSubdirectory("be-").FullName;
        try
        {
            var socket = Path.Combine(directory, "nri.sock");
            using var other = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            other.Bind(new UnixDomainSocketEndPoint(socket));
            other.Listen(1);
            var config = Path.Combine(directory, "config.toml");
            await File.WriteAllTextAsync(config, $"""
                root = "{directory}/root"
                state = "{directory}/state"
                [grpc]
                socket = "{directory}/berth.sock"
                [nri]
                socket_path = "{socket}"
                """);
            var (code, output) = await BerthDaemon.RunToExitAsync(["--config", config], TimeSpan.FromSeconds(30));
            Assert.Equal(2, code);
            Assert.Contains($"nri.socket_path: another process is already serving on '{socket}'", output, StringComparison.Ordinal);
            Assert.True(File.Exists(socket), "berthd took the other listener's socket");
        }
        finally
        {
            Berth.Native.FileTree.Remove(directory);
        }
    }

    [Fact]
    public async Task A_missing_required_plugin_fails_pod_creation_until_it_connects()
    {
        await using var daemon = await DaemonAsync("required_plugins = [\"gatekeeper\"]\n");
        var pod = bed.Pod("nri-required", hostNetwork: true);
        var (missingCode, missing) = await BerthCli.RunAsync(daemon, ["nri"]);
        Assert.Equal(1, missingCode);
        Assert.Contains("required plugin gatekeeper is not connected", missing, StringComparison.Ordinal);
        var error = await Assert.ThrowsAsync<RpcException>(() => RunPodAsync(daemon, pod));
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("NRI plugin \"gatekeeper\" is required (nri.required_plugins) and is not connected", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);

        using var gatekeeper = await NriPluginProcess.ConnectAsync(daemon, "01", "gatekeeper", new() { ["events"] = new List<string> { "RunPodSandbox" } });
        var (code, listed) = await BerthCli.RunAsync(daemon, ["nri"]);
        Assert.Equal(0, code);
        Assert.Matches($@"01-gatekeeper\s+external\s+{gatekeeper.Pid}\s+RunPodSandbox", listed);
        var podId = await RunPodAsync(daemon, pod);
        Assert.Equal(["RunPodSandbox pod=nri-required container="], gatekeeper.Events().Where(e => e.StartsWith("Run", StringComparison.Ordinal)));
        await RemovePodAsync(daemon, podId);
    }

    [Fact]
    public async Task A_plugin_built_on_an_old_stub_gets_pod_and_post_events_through_StateChange()
    {
        await using var daemon = await DaemonAsync();
        using var plugin = await NriPluginProcess.ConnectAsync(daemon, "40", "old", new() { ["stateChangeOnly"] = true });
        var pod = bed.Pod("nri-old", hostNetwork: true);
        var podId = await RunPodAsync(daemon, pod);
        var id = await CreateAsync(daemon, podId, pod, bed.Container("app", "sleep", "600"));
        await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        await RemovePodAsync(daemon, podId);
        Assert.Equal(
        [
            "RunPodSandbox pod=nri-old container=",
            "CreateContainer pod=nri-old container=app",
            "PostCreateContainer pod=nri-old container=app",
            "StartContainer pod=nri-old container=app",
            "PostStartContainer pod=nri-old container=app",
            "StopContainer pod=nri-old container=app",
            "StopPodSandbox pod=nri-old container=",
            "RemoveContainer pod=nri-old container=app",
            "RemovePodSandbox pod=nri-old container=",
        ], plugin.Events().Skip(2));
    }

    [Fact]
    public async Task A_pre_registered_plugin_is_started_from_the_plugin_dir_and_a_restart_resynchronizes_every_plugin()
    {
        var directory = Directory.CreateTempSubdirectory("be-").FullName;
        var preRegistered = NriPluginProcess.Install(directory, "05", "installed", new() { ["env"] = new Dictionary<string, string> { ["INSTALLED"] = "by-conf" } });
        NriPluginProcess? external = null;
        try
        {
            string podId, id;
            int pid;
            var pod = bed.Pod("nri-restart", hostNetwork: true);
            await using (var daemon = await DaemonAsync(directory: directory))
            {
                var plugins = await NriPluginProcess.PluginsAsync(daemon);
                var installed = Assert.Single(plugins.EnumerateArray());
                Assert.Equal(("05", "installed", "pre-registered"), (installed.GetProperty("index").GetString(), installed.GetProperty("name").GetString(), installed.GetProperty("kind").GetString()));
                pid = installed.GetProperty("pid").GetInt32();
                Assert.True(pid > 0);
                // Started with the environment NRI's stub expects, and nothing else (PWD is what the test's sh wrapper adds).
                Assert.Equal(["NRI_PLUGIN_IDX=05", "NRI_PLUGIN_NAME=installed", "NRI_PLUGIN_SOCKET=3"],
                    File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries).Where(e => !e.StartsWith("PWD=", StringComparison.Ordinal)).Order(StringComparer.Ordinal));

                external = await NriPluginProcess.ConnectAsync(daemon, "50", "external", new(), reconnect: true);
                podId = await RunPodAsync(daemon, pod);
                id = await CreateAsync(daemon, podId, pod, bed.Container("app", "sleep", "600"));
                await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
                Assert.Equal("by-conf", await ShAsync(daemon, id, "echo $INSTALLED"));
            }
            // berthd let its plugin go with it.
            Assert.False(Directory.Exists($"/proc/{pid}"), "the pre-registered plugin outlived berthd");

            await using (var daemon = await DaemonAsync(directory: directory))
            {
                await NriPluginProcess.WaitConnectedAsync(daemon, "50-external");
                await external.WaitForEventAsync("Synchronize", count: 2);
                await preRegistered.WaitForEventAsync("Synchronize", count: 2);
                Assert.Equal("Synchronize pods=nri-restart containers=app", external.Events().Last(e => e.StartsWith("Synchronize", StringComparison.Ordinal)));
                Assert.Equal("Synchronize pods=nri-restart containers=app", preRegistered.Events().Last(e => e.StartsWith("Synchronize", StringComparison.Ordinal)));
                // Both still hooked in: the restarted berthd's events reach them.
                await RemovePodAsync(daemon, podId);
                Assert.Contains("RemovePodSandbox pod=nri-restart container=", external.Events());
                Assert.Contains("RemovePodSandbox pod=nri-restart container=", preRegistered.Events());
            }
        }
        finally
        {
            external?.Dispose();
            foreach (var mount in Host.MountsUnder(directory).Reverse()) Host.Run("umount", "-l", mount);
            Berth.Native.FileTree.Remove(directory);
        }
    }
}
