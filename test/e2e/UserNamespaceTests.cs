using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// Pods in a user namespace of their own (kubelet's <c>hostUsers: false</c>): root inside is an unprivileged range of the
/// node's IDs, files are shown through idmapped mounts (KEP-127), and nothing of it is left once the pod goes.
/// </summary>
public sealed class UserNamespaceTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private const uint HostId = 100000, Length = 65536;

    private static UserNamespace PodUserns(uint hostId = HostId, uint length = Length, uint containerId = 0)
    {
        var userns = new UserNamespace { Mode = NamespaceMode.Pod };
        userns.Uids.Add(new IDMapping { ContainerId = containerId, HostId = hostId, Length = length });
        userns.Gids.Add(new IDMapping { ContainerId = containerId, HostId = hostId, Length = length });
        return userns;
    }

    private PodSandboxConfig Pod(string name, UserNamespace? userns = null, NamespaceMode pid = NamespaceMode.Container)
    {
        var pod = bed.Pod(name, pid: pid);
        pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions = userns ?? PodUserns();
        return pod;
    }

    /// <summary>A container of the pod, stating the pod's namespace options as kubelet does.</summary>
    private ContainerConfig Container(PodSandboxConfig pod, string name, params string[] command)
    {
        var config = bed.Container(name, command);
        config.Linux.SecurityContext.NamespaceOptions = pod.Linux.SecurityContext.NamespaceOptions.Clone();
        return config;
    }

    private async Task<int> InitPidOfAsync(string id)
    {
        var verbose = await bed.Daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = true });
        using var info = JsonDocument.Parse(verbose.Info["info"]);
        return info.RootElement.GetProperty("pid").GetInt32();
    }

    private static string StatusField(int pid, string field) =>
        File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith(field + ":", StringComparison.Ordinal))[(field.Length + 1)..].Trim();

    private async Task<string> ShAsync(string id, string script)
    {
        var (code, stdout, stderr) = await bed.ExecAsync(id, "sh", "-c", script);
        Assert.True(code == 0, $"`{script}` exited {code}: {stdout}{stderr}");
        return stdout.Trim();
    }

    /// <summary>What a pod leaves on the node: mounts under the daemon's directory, helper and infra processes.</summary>
    private void AssertNothingLeftOf(string podId)
    {
        Assert.DoesNotContain(Host.MountsUnder(bed.Daemon.Directory), m => m.Contains(podId, StringComparison.Ordinal) || m.Contains("idmapped", StringComparison.Ordinal));
        Assert.Equal(1, Host.Run("pgrep", "-f", $"berth-shim (userns|pause) --sandbox {podId}").ExitCode);
    }

    [Fact]
    public async Task Root_inside_is_an_unprivileged_range_outside_and_files_are_idmapped()
    {
        var pod = Pod("userns");
        // Sysctls of the namespaces the pod's user namespace owns are set by berthd from outside them.
        pod.Linux.Sysctls["net.ipv4.ip_unprivileged_port_start"] = "0";
        pod.Linux.Sysctls["kernel.msgmax"] = "16384";
        var podId = await bed.RunPodAsync(pod);
        var hostDirectory = Directory.CreateTempSubdirectory("berth-userns-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(hostDirectory, "node-root-file"), "owned by the node's root\n");
            var config = Container(pod, "app", "sleep", "3600");
            config.Image = new ImageSpec { Image = bed.ConfiguredImage };
            config.Mounts.Add(new Mount { HostPath = hostDirectory, ContainerPath = "/host" });
            var id = await bed.RunAsync(podId, pod, config);

            // Inside: root, with the pod's maps.
            Assert.Equal("0 0", await ShAsync(id, "echo $(id -u) $(id -g)"));
            Assert.Equal($"0 {HostId} {Length}", string.Join(' ', (await ShAsync(id, "cat /proc/self/uid_map")).Split(' ', StringSplitOptions.RemoveEmptyEntries)));
            Assert.Equal($"0 {HostId} {Length}", string.Join(' ', (await ShAsync(id, "cat /proc/self/gid_map")).Split(' ', StringSplitOptions.RemoveEmptyEntries)));
            // Outside: the container's process is the range's first ID.
            var init = await InitPidOfAsync(id);
            Assert.StartsWith($"{HostId}\t{HostId}", StatusField(init, "Uid"), StringComparison.Ordinal);
            Assert.StartsWith($"{HostId}\t{HostId}", StatusField(init, "Gid"), StringComparison.Ordinal);

            // The image's files have their image owners inside (root's, and 1000's in the volume the image seeds).
            Assert.Equal("0:0 0:0 1000:1000 1000:1000", await ShAsync(id, "stat -c %u:%g /bin/busybox /etc/passwd /vol /vol/seed.txt | xargs"));
            // The writable layer and the pod's files are root's to write; on the node the layer's files are the range's.
            await ShAsync(id, "echo x > /made-in-rootfs && echo '10.9.9.9 extra' >> /etc/hosts && echo y > /dev/shm/s && touch /vol/added");
            Assert.Equal("0:0", await ShAsync(id, "stat -c %u:%g /made-in-rootfs"));

            // KEP-127: a node file of uid 0 is root's inside, and what root makes there is uid 0's on disk, not the range's.
            Assert.Equal("0:0", await ShAsync(id, "stat -c %u:%g /host/node-root-file"));
            await ShAsync(id, "echo from-inside > /host/made-inside");
            var made = new FileInfo(Path.Combine(hostDirectory, "made-inside"));
            Assert.Equal("0:0", Host.Run("stat", "-c", "%u:%g", made.FullName).Output.Trim());

            Assert.Equal("userns", await ShAsync(id, "hostname"));
            Assert.Equal("0 16384", await ShAsync(id, "echo $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/msgmax)"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            Directory.Delete(hostDirectory, recursive: true);
        }
        AssertNothingLeftOf(podId);
    }

    [Fact]
    public async Task Capabilities_inside_reach_nothing_of_the_node()
    {
        var pod = Pod("userns-caps");
        var podId = await bed.RunPodAsync(pod);
        var hostDirectory = Directory.CreateTempSubdirectory("berth-userns-ro-").FullName;
        try
        {
            var config = Container(pod, "admin", "sleep", "3600");
            config.Linux.SecurityContext.Capabilities = new Capability { AddCapabilities = { "SYS_ADMIN", "MKNOD" } };
            config.Mounts.Add(new Mount { HostPath = hostDirectory, ContainerPath = "/ro", Readonly = true });
            var id = await bed.RunAsync(podId, pod, config);

            // CAP_SYS_ADMIN of the pod's namespace is real for what the pod owns (a tmpfs of its own)...
            await ShAsync(id, "mkdir -p /t && mount -t tmpfs t /t && touch /t/x");
            // ...and no more: a node mount cannot be made writable, a node device cannot be made, a node sysctl not set.
            var (remount, _, remountError) = await bed.ExecAsync(id, "sh", "-c", "mount -o remount,rw,bind /ro && touch /ro/written");
            Assert.True(remount != 0, $"remounting a read-only host path read-write worked: {remountError}");
            Assert.False(File.Exists(Path.Combine(hostDirectory, "written")));
            var (mknod, _, _) = await bed.ExecAsync(id, "sh", "-c", "mknod /tmp/disk b 8 0");
            Assert.NotEqual(0, mknod);
            var (sysctl, _, _) = await bed.ExecAsync(id, "sh", "-c", "echo 1 > /proc/sys/kernel/sysrq");
            Assert.NotEqual(0, sysctl);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            Directory.Delete(hostDirectory, recursive: true);
        }
        AssertNothingLeftOf(podId);
    }

    [Fact]
    public async Task A_shared_PID_namespace_is_the_user_namespaces_too_and_exec_logs_stats_and_port_forward_work()
    {
        var pod = Pod("userns-pid", pid: NamespaceMode.Pod);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var infra = Assert.Single(Host.Run("pgrep", "-f", $"berth-shim pause --sandbox {podId}").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
            // The infra runs as the namespace's root, which is the range's first ID on the node.
            Assert.StartsWith($"{HostId}\t", StatusField(infra, "Uid"), StringComparison.Ordinal);
            Assert.EndsWith("\t1", StatusField(infra, "NSpid"), StringComparison.Ordinal);

            var id = await bed.RunAsync(podId, pod, Container(pod, "web", "sh", "-c", "echo started; nc -ll -p 7070 -e echo pong"));
            await ContainerTestBed.WaitForLogAsync(Path.Combine(bed.LogDirectory("userns-pid"), "web.log"), "started");
            // Its /proc is of the pod's PID namespace, whose PID 1 is the infra.
            Assert.Contains("pause", await ShAsync(id, "cat /proc/1/cmdline | tr '\\0' ' '"), StringComparison.Ordinal);

            var stats = (await bed.Daemon.Runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = id })).Stats;
            Assert.True(stats.Memory.WorkingSetBytes.Value > 0);

            for (var i = 0; i < 100 && !(await ShAsync(id, "netstat -ltn 2>/dev/null || cat /proc/net/tcp")).Contains(":1B9E", StringComparison.Ordinal); i++) await Task.Delay(50);
            var forward = await bed.Daemon.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = podId, Port = { 7070 } });
            var (client, status, body) = await SpdyTestClient.ConnectAsync(forward.Url, "portforward.k8s.io");
            Assert.True(client is not null, $"upgrade refused with {status}: {body}");
            await using (client)
            {
                var error = await client.OpenAsync(("streamType", "error"), ("port", "7070"), ("requestID", "1"));
                await error.CloseAsync();
                var data = await client.OpenAsync(("streamType", "data"), ("port", "7070"), ("requestID", "1"));
                Assert.Contains("pong", await data.ReadUntilAsync("pong", TimeSpan.FromSeconds(20)), StringComparison.Ordinal);
            }
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        AssertNothingLeftOf(podId);
    }

    [Fact]
    public async Task Attach_events_and_an_image_volume_work_in_a_user_namespace_pod()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var events = bed.Daemon.Runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: timeout.Token);
        await Task.Delay(500); // the subscription is in place once the call has reached berthd
        var pod = Pod("userns-attach");
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var config = Container(pod, "cat", "sh", "-c", "stat -c 'volume %u:%g' /iv/vol/seed.txt; exec cat");
            config.Stdin = true;
            config.StdinOnce = true;
            config.Mounts.Add(new Mount { ContainerPath = "/iv", Image = new ImageSpec { Image = bed.ConfiguredImage }, Readonly = true });
            var id = await bed.RunAsync(podId, pod, config);

            var url = (await bed.Daemon.Runtime.AttachAsync(new AttachRequest { ContainerId = id, Stdin = true, Stdout = true })).Url;
            var (client, status, body) = await SpdyTestClient.ConnectAsync(url, "v4.channel.k8s.io");
            Assert.True(client is not null, $"upgrade refused with {status}: {body}");
            await using (client)
            {
                var error = await client.OpenAsync(("streamType", "error"));
                var stdin = await client.OpenAsync(("streamType", "stdin"));
                var stdout = await client.OpenAsync(("streamType", "stdout"));
                await stdin.WriteAsync("through attach\n");
                Assert.Contains("through attach", await stdout.ReadUntilAsync("through attach"), StringComparison.Ordinal);
                await stdin.CloseAsync();
                await stdout.ReadToEndAsync();
                await error.ReadToEndAsync();
            }
            Assert.Equal(0, (await bed.WaitExitedAsync(id)).ExitCode);
            // The image volume's layers are idmapped too: its files keep their image owners inside.
            Assert.Contains("stdout F volume 1000:1000", await File.ReadAllTextAsync(Path.Combine(bed.LogDirectory("userns-attach"), "cat.log")), StringComparison.Ordinal);

            var seen = new List<ContainerEventType>();
            while (seen.Count < 3 && await events.ResponseStream.MoveNext(timeout.Token))
            {
                if (events.ResponseStream.Current.ContainerId == id) seen.Add(events.ResponseStream.Current.ContainerEventType);
            }
            Assert.Equal([ContainerEventType.ContainerCreatedEvent, ContainerEventType.ContainerStartedEvent, ContainerEventType.ContainerStoppedEvent], seen);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        AssertNothingLeftOf(podId);
    }

    public static TheoryData<string, string> Refused => new()
    {
        { "container", "userns_options.mode" },
        { "target", "userns_options.mode" },
        { "two-mappings", "userns_options.uids" },
        { "id-0-unmapped", "uids[0].container_id" },
        { "node-with-mappings", "userns_options" },
        { "empty-range", "uids[0].length" },
        { "past-the-top", "uids[0]" },
        { "host-network", "node's network namespace" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task A_user_namespace_the_node_cannot_honour_is_refused_by_field(string shape, string field)
    {
        var userns = shape switch
        {
            "container" => new UserNamespace { Mode = NamespaceMode.Container },
            "target" => new UserNamespace { Mode = NamespaceMode.Target },
            "id-0-unmapped" => PodUserns(containerId: 1),
            "empty-range" => PodUserns(length: 0),
            "past-the-top" => PodUserns(hostId: uint.MaxValue - 10),
            _ => PodUserns(),
        };
        if (shape == "two-mappings")
        {
            userns.Uids.Add(new IDMapping { ContainerId = 0, HostId = 200000, Length = Length });
            userns.Gids.Add(new IDMapping { ContainerId = 0, HostId = 200000, Length = Length });
        }
        if (shape == "node-with-mappings") userns.Mode = NamespaceMode.Node;
        var pod = Pod($"refused-{shape}", userns);
        if (shape == "host-network") pod.Linux.SecurityContext.NamespaceOptions.Network = NamespaceMode.Node;

        var error = await Assert.ThrowsAsync<RpcException>(async () => await bed.RunPodAsync(pod));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(field, error.Status.Detail, StringComparison.Ordinal);
        var pods = await bed.Daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest());
        Assert.DoesNotContain(pods.Items, p => p.Metadata.Name == pod.Metadata.Name);
    }

    [Fact]
    public async Task A_container_must_be_in_its_pods_user_namespace_unprivileged_with_private_mounts()
    {
        var pod = Pod("userns-containers");
        var podId = await bed.RunPodAsync(pod);
        try
        {
            async Task RefusedAsync(ContainerConfig config, string field)
            {
                var error = await Assert.ThrowsAsync<RpcException>(async () => await bed.CreateAsync(podId, pod, config));
                Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
                Assert.Contains(field, error.Status.Detail, StringComparison.Ordinal);
            }

            var other = Container(pod, "other-range", "true");
            other.Linux.SecurityContext.NamespaceOptions.UsernsOptions = PodUserns(hostId: 300000);
            await RefusedAsync(other, "userns_options");
            var node = Container(pod, "node", "true");
            node.Linux.SecurityContext.NamespaceOptions.UsernsOptions = new UserNamespace { Mode = NamespaceMode.Node };
            await RefusedAsync(node, "userns_options");
            var propagation = Container(pod, "propagation", "true");
            propagation.Mounts.Add(new Mount { HostPath = "/tmp", ContainerPath = "/hosttmp", Propagation = MountPropagation.PropagationHostToContainer });
            await RefusedAsync(propagation, "mounts[0].propagation");
            var mappings = Container(pod, "mount-mappings", "true");
            mappings.Mounts.Add(new Mount { HostPath = "/tmp", ContainerPath = "/hosttmp", UidMappings = { new IDMapping { ContainerId = 0, HostId = 1, Length = 1 } } });
            await RefusedAsync(mappings, "mounts[0]");

            // Nothing of the refused ones is left, and the pod still runs containers.
            Assert.Empty((await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = podId } })).Containers);
            var id = await bed.RunAsync(podId, pod, Container(pod, "fine", "sleep", "60"));
            Assert.Equal("0", await ShAsync(id, "id -u"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        AssertNothingLeftOf(podId);
    }

    [Fact]
    public async Task Status_offers_user_namespaces_and_a_NODE_pod_keeps_the_nodes()
    {
        var status = await bed.Daemon.Runtime.StatusAsync(new StatusRequest());
        Assert.All(status.RuntimeHandlers.Where(h => h.Name is "" or "runc"), h => Assert.True(h.Features.UserNamespaces, $"handler '{h.Name}'"));

        var pod = Pod("userns-node", new UserNamespace { Mode = NamespaceMode.Node });
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var id = await bed.RunAsync(podId, pod, Container(pod, "node", "sleep", "60"));
            var inside = string.Join(' ', (await ShAsync(id, "cat /proc/self/uid_map")).Split(' ', StringSplitOptions.RemoveEmptyEntries));
            var outside = string.Join(' ', File.ReadAllText("/proc/self/uid_map").Split(' ', StringSplitOptions.RemoveEmptyEntries)).Trim();
            Assert.Equal(outside, inside);
            var podStatus = (await bed.Daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId })).Status;
            Assert.Equal(NamespaceMode.Node, podStatus.Linux.Namespaces.Options.UsernsOptions.Mode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_user_namespace_pod_survives_kill_9_of_berthd_and_goes_without_a_trace()
    {
        var directory = Directory.CreateTempSubdirectory("be-userns-").FullName;
        var options = new DaemonOptions { Directory = directory };
        BerthDaemon? second = null;
        var first = await BerthDaemon.StartAsync(options);
        var network = TestNetwork.Create(first);
        try
        {
            await first.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Image } });
            var pod = Pod("userns-survivor");
            pod.LogDirectory = Path.Combine(directory, "logs");
            var podId = (await first.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
            var config = Container(pod, "survivor", "sleep", "3600");
            var id = (await first.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
            await first.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });

            first.Signal(Tmds.Linux.LibC.SIGKILL);
            await first.WaitForExitAsync(TimeSpan.FromSeconds(20));
            second = await BerthDaemon.StartAsync(options);

            var status = (await second.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
            Assert.Equal(ContainerState.ContainerRunning, status.State);
            var exec = new ExecSyncRequest { ContainerId = id, Timeout = 10, Cmd = { "cat", "/proc/self/uid_map" } };
            Assert.Contains($"{HostId}", (await second.Runtime.ExecSyncAsync(exec)).Stdout.ToStringUtf8(), StringComparison.Ordinal);
            var sandbox = (await second.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId })).Status;
            Assert.Equal(PodSandboxState.SandboxReady, sandbox.State);
            Assert.Equal(HostId, sandbox.Linux.Namespaces.Options.UsernsOptions.Uids.Single().HostId);

            await second.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await second.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
            Assert.Empty(Host.MountsUnder(directory));
        }
        finally
        {
            // A test that failed before the second start still leaves nothing: a daemon of the directory removes what is there.
            if (second is null && first.HasExited) second = await BerthDaemon.StartAsync(options);
            if (second is not null)
            {
                await second.RemoveEverythingAsync();
                await second.DisposeAsync();
            }
            await first.DisposeAsync();
            network.Dispose();
            Directory.Delete(directory, recursive: true);
        }
    }
}
