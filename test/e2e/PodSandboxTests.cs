using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>Pod sandboxes with real namespaces and Debian's CNI plugins (bridge, host-local), checked from the host.</summary>
public sealed class PodSandboxTests
{
    private static PodSandboxConfig Pod(string name, Action<PodSandboxConfig>? change = null)
    {
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = "default", Uid = Guid.NewGuid().ToString(), Attempt = 0 },
            Hostname = name,
            Labels = { ["app"] = name },
        };
        change?.Invoke(config);
        return config;
    }

    [Fact]
    public async Task A_pod_gets_its_own_network_namespace_with_an_IP_and_lo_up()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon);

        var id = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("web") })).PodSandboxId;

        var status = (await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id })).Status;
        Assert.Equal(PodSandboxState.SandboxReady, status.State);
        Assert.StartsWith(network.SubnetPrefix + ".", status.Network.Ip, StringComparison.Ordinal);
        Assert.Equal("web", status.Metadata.Name);
        Assert.Equal(NamespaceMode.Pod, status.Linux.Namespaces.Options.Network);

        var namespaces = await daemon.NamespacesOfAsync(id);
        var eth0 = Host.InNamespaces(namespaces, "ip", "-o", "-4", "addr", "show", "eth0");
        Assert.Contains($"inet {status.Network.Ip}/24", eth0.Output, StringComparison.Ordinal);
        Assert.Contains("UP", Host.InNamespaces(namespaces, "ip", "-o", "link", "show", "lo").Output, StringComparison.Ordinal);
        Assert.Equal("web", Host.InNamespaces(namespaces, "/bin/busybox", "hostname").Output.Trim());
        Assert.Equal([status.Network.Ip], network.Leases());
        // The pod's /dev/shm: a 64 MiB tmpfs its containers will share.
        var shm = Host.Run("findmnt", "-n", "-o", "FSTYPE,OPTIONS", Path.Combine(daemon.StatePath, "sandboxes", id, "shm")).Output;
        Assert.StartsWith("tmpfs", shm, StringComparison.Ordinal);
        Assert.Contains("size=65536k", shm, StringComparison.Ordinal);

        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
        Assert.Empty(network.Leases());
        Assert.Empty(Host.MountsUnder(daemon.StatePath));
        Assert.All(namespaces.Values, path => Assert.False(File.Exists(path), $"{path} outlived the pod"));
    }

    [Fact]
    public async Task Two_pods_reach_each_other_by_IP()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon);
        var a = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("a") })).PodSandboxId;
        var b = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("b") })).PodSandboxId;
        var ipB = (await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = b })).Status.Network.Ip;

        var ping = Host.InNamespaces(await daemon.NamespacesOfAsync(a), "/bin/busybox", "ping", "-c", "1", "-W", "3", ipB);

        Assert.True(ping.ExitCode == 0, ping.Output);
        foreach (var id in new[] { a, b }) await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
    }

    [Fact]
    public async Task Stop_and_remove_are_idempotent_and_leave_nothing()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon);
        var veths = Host.VethCount();
        var id = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("idem") })).PodSandboxId;
        Assert.Equal(veths + 1, Host.VethCount());

        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
        var stopped = (await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id })).Status;
        Assert.Equal(PodSandboxState.SandboxNotready, stopped.State);
        Assert.Equal(veths, Host.VethCount());
        Assert.Empty(network.Leases());

        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = "0123456789abcdef" });
        Assert.Empty((await daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(daemon.StatePath, "sandboxes")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(daemon.RootPath, "cni", "cache")));
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id }));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
    }

    [Fact]
    public async Task A_host_network_pod_skips_CNI()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon);
        var veths = Host.VethCount();
        var id = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest
        {
            Config = Pod("host", c => c.Linux = new LinuxPodSandboxConfig
            {
                SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } },
            }),
        })).PodSandboxId;

        var status = (await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id })).Status;
        Assert.Equal(NamespaceMode.Node, status.Linux.Namespaces.Options.Network);
        Assert.Equal(veths, Host.VethCount());
        Assert.Empty(network.Leases());
        Assert.DoesNotContain("network", await daemon.NamespacesOfAsync(id));
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
    }

    [Fact]
    public async Task DNS_options_and_sysctls_apply_to_the_pod()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon);
        var id = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest
        {
            Config = Pod("dns", c =>
            {
                c.DnsConfig = new DNSConfig { Servers = { "10.96.0.10" }, Searches = { "default.svc.cluster.local", "svc.cluster.local" }, Options = { "ndots:5" } };
                c.Linux = new LinuxPodSandboxConfig { Sysctls = { ["net.ipv4.ip_unprivileged_port_start"] = "80", ["kernel.shm_rmid_forced"] = "1" } };
            }),
        })).PodSandboxId;

        var status = await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = true });
        using var info = JsonDocument.Parse(status.Info["info"]);
        var directory = info.RootElement.GetProperty("directory").GetString()!;
        Assert.Equal("search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
            await File.ReadAllTextAsync(Path.Combine(directory, "resolv.conf")));
        Assert.Equal("dns\n", await File.ReadAllTextAsync(Path.Combine(directory, "hostname")));
        Assert.Contains($"{status.Status.Network.Ip}\tdns", await File.ReadAllTextAsync(Path.Combine(directory, "hosts")), StringComparison.Ordinal);

        var namespaces = await daemon.NamespacesOfAsync(id);
        Assert.Equal("80", Host.InNamespaces(namespaces, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start").Output.Trim());
        Assert.Equal("1", Host.InNamespaces(namespaces, "cat", "/proc/sys/kernel/shm_rmid_forced").Output.Trim());
        // The host's own values are untouched.
        Assert.NotEqual("80", (await File.ReadAllTextAsync("/proc/sys/net/ipv4/ip_unprivileged_port_start")).Trim());
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
    }

    [Fact]
    public async Task A_host_port_on_loopback_reaches_a_listener_in_the_pod()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon, """{"type":"portmap","capabilities":{"portMappings":true}}""");
        var hostPort = RegistryServer.FreePort();
        var id = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest
        {
            Config = Pod("ports", c => c.PortMappings.Add(new Cri.V1.PortMapping { ContainerPort = 8080, HostPort = hostPort, HostIp = "127.0.0.1", Protocol = Protocol.Tcp })),
        })).PodSandboxId;
        var namespaces = await daemon.NamespacesOfAsync(id);

        // A one-shot listener inside the pod's network namespace, answering the first connection.
        using var listener = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("nsenter",
            ["--net=" + namespaces["network"], "/bin/busybox", "sh", "-c", "echo hello-from-the-pod | /bin/busybox nc -l -p 8080"])
        { RedirectStandardOutput = true, UseShellExecute = false })!;
        try
        {
            string? answer = null;
            for (var i = 0; i < 50 && answer is null; i++)
            {
                try
                {
                    using var client = new System.Net.Sockets.TcpClient();
                    await client.ConnectAsync(System.Net.IPAddress.Loopback, hostPort);
                    using var reader = new StreamReader(client.GetStream());
                    answer = await reader.ReadLineAsync();
                }
                catch (System.Net.Sockets.SocketException)
                {
                    await Task.Delay(100);
                }
            }
            Assert.Equal("hello-from-the-pod", answer);
        }
        finally
        {
            if (!listener.HasExited) listener.Kill();
        }

        Assert.Contains(id, Host.Run("iptables-save", "-t", "nat").Output, StringComparison.Ordinal);
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
        // portmap's DEL removed what its ADD put in the nat table.
        var rulesAfter = Host.Run("iptables-save", "-t", "nat").Output;
        Assert.DoesNotContain($"--dport {hostPort}", rulesAfter, StringComparison.Ordinal);
        Assert.DoesNotContain(id, rulesAfter, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_crash_in_the_middle_of_RunPodSandbox_leaks_nothing_after_a_restart()
    {
        using var plugins = new FakePlugins();
        plugins.HangingOn("berth-hang", "ADD"); // after bridge: the address is leased when it hangs
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        TestNetwork? network = null;
        try
        {
            var options = new DaemonOptions { Directory = directory, CniBinDirs = ["/usr/lib/cni", plugins.Directory] };
            await using (var first = await BerthDaemon.StartAsync(options))
            {
                network = TestNetwork.Create(first, """{"type":"berth-hang"}""");
                var run = first.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("crashed") }).ResponseAsync;
                await plugins.WaitUntilHangingAsync();
                Assert.Single(network.Leases());
                first.Signal(Tmds.Linux.LibC.SIGKILL);
                await first.WaitForExitAsync(TimeSpan.FromSeconds(20));
                await Assert.ThrowsAnyAsync<Exception>(() => run);
            }
            plugins.Release();

            await using var second = await BerthDaemon.StartAsync(options);
            Assert.Empty((await second.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
            Assert.Empty(network.Leases());
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(second.StatePath, "sandboxes")));
            Assert.DoesNotContain(directory, await File.ReadAllTextAsync("/proc/mounts"), StringComparison.Ordinal);
        }
        finally
        {
            network?.Dispose();
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_pod_whose_netns_pin_was_unmounted_is_still_stopped_and_removed_leaking_nothing()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon, """{"type":"portmap","capabilities":{"portMappings":true}}""");
        var veths = Host.VethCount();
        var config = Pod("lost-netns");
        config.PortMappings.Add(new Cri.V1.PortMapping { ContainerPort = 80, HostPort = RegistryServer.FreePort(), Protocol = Protocol.Tcp });
        var id = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;
        var pin = Path.Combine(daemon.StatePath, "sandboxes", id, "ns", "net");
        Assert.Single(network.Leases());
        // What an operator's umount (or a reboot's tmpfs) leaves: the pin is an empty file, no namespace.
        Assert.Equal(0, Host.Run("umount", pin).ExitCode);

        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });

        Assert.Empty(network.Leases());
        Assert.Empty((await daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
        Assert.DoesNotContain(id, Host.Run("iptables-save", "-t", "nat").Output, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(daemon.RootPath, "cni", "cache")));
        Assert.Empty(Host.MountsUnder(daemon.StatePath));
        // The veth's host end went with the namespace that held its peer.
        Assert.Equal(veths, Host.VethCount());
    }

    [Fact]
    public async Task A_crash_in_the_middle_of_StopPodSandbox_is_finished_at_the_next_start()
    {
        using var plugins = new FakePlugins();
        plugins.HangingOn("berth-hang-del", "DEL"); // DEL runs in reverse: this hangs before bridge releases the address
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        TestNetwork? network = null;
        try
        {
            var options = new DaemonOptions { Directory = directory, CniBinDirs = ["/usr/lib/cni", plugins.Directory] };
            string id;
            await using (var first = await BerthDaemon.StartAsync(options))
            {
                network = TestNetwork.Create(first, """{"type":"berth-hang-del"}""");
                id = (await first.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("stopping") })).PodSandboxId;
                var stop = first.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id }).ResponseAsync;
                await plugins.WaitUntilHangingAsync();
                first.Signal(Tmds.Linux.LibC.SIGKILL);
                await first.WaitForExitAsync(TimeSpan.FromSeconds(20));
                await Assert.ThrowsAnyAsync<Exception>(() => stop);
            }
            plugins.Release();
            Assert.Single(network.Leases());

            await using var second = await BerthDaemon.StartAsync(options);
            var status = (await second.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id })).Status;
            Assert.Equal(PodSandboxState.SandboxNotready, status.State); // never Ready without its network
            // Finished before serving, with no second StopPodSandbox: the lease, the CNI cache, the pins and /dev/shm.
            Assert.Empty(network.Leases());
            Assert.Empty(Directory.EnumerateFiles(Path.Combine(second.RootPath, "cni", "cache")));
            Assert.Empty(Host.MountsUnder(second.StatePath));
            Assert.Contains("finishing an interrupted StopPodSandbox", second.Output, StringComparison.Ordinal);
            await second.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
            await second.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(second.StatePath, "sandboxes")));
        }
        finally
        {
            network?.Dispose();
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Fifty_pods_at_once_then_removed_leave_nothing()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon);
        var veths = Host.VethCount();

        var ids = await Task.WhenAll(Enumerable.Range(0, 50).Select(async i =>
            (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod($"many-{i}") })).PodSandboxId));

        Assert.Equal(50, ids.Distinct().Count());
        Assert.Equal(50, network.Leases().Count);
        Assert.Equal(veths + 50, Host.VethCount());
        await Task.WhenAll(ids.Select(async id => await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id })));
        Assert.Empty(network.Leases());
        Assert.Equal(veths, Host.VethCount());
        Assert.Empty(Host.MountsUnder(daemon.StatePath));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(daemon.StatePath, "sandboxes")));
    }

    [Fact]
    public async Task Capability_args_reach_the_plugins_that_declare_them()
    {
        using var plugins = new FakePlugins();
        var log = Path.Combine(plugins.Directory, "stdin.log");
        plugins.Recording("berth-record", log);
        {
            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { CniBinDirs = ["/usr/lib/cni", plugins.Directory] });
            using var network = TestNetwork.Create(daemon, """{"type":"berth-record","capabilities":{"bandwidth":true,"dns":true,"ipRanges":true,"portMappings":true}}""");
            await daemon.Runtime.UpdateRuntimeConfigAsync(new UpdateRuntimeConfigRequest
            {
                RuntimeConfig = new RuntimeConfig { NetworkConfig = new NetworkConfig { PodCidr = "10.244.3.0/24" } },
            });

            var id = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest
            {
                Config = Pod("caps", c =>
                {
                    c.Annotations["kubernetes.io/ingress-bandwidth"] = "10M";
                    c.DnsConfig = new DNSConfig { Servers = { "10.96.0.10" } };
                    c.PortMappings.Add(new Cri.V1.PortMapping { ContainerPort = 80, HostPort = 30080, Protocol = Protocol.Tcp });
                }),
            })).PodSandboxId;

            var add = (await File.ReadAllLinesAsync(log)).Single(l => l.StartsWith("ADD ", StringComparison.Ordinal));
            Assert.Contains("\"bandwidth\":{\"ingressRate\":10000000,\"ingressBurst\":2147483647}", add, StringComparison.Ordinal);
            Assert.Contains("\"dns\":{\"servers\":[\"10.96.0.10\"],\"searches\":[],\"options\":[]}", add, StringComparison.Ordinal);
            Assert.Contains("\"ipRanges\":[[{\"subnet\":\"10.244.3.0/24\"}]]", add, StringComparison.Ordinal);
            Assert.Contains("\"portMappings\":[{\"hostPort\":30080,\"containerPort\":80,\"protocol\":\"tcp\"", add, StringComparison.Ordinal);
            await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
        }
    }

    [Fact]
    public async Task An_ordinary_lifecycle_runs_CNI_DEL_once_with_the_netns_and_warns_of_nothing()
    {
        using var plugins = new FakePlugins();
        var log = Path.Combine(plugins.Directory, "stdin.log");
        plugins.Recording("berth-record", log);
        await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { CniBinDirs = ["/usr/lib/cni", plugins.Directory] });
        using var network = TestNetwork.Create(daemon, """{"type":"berth-record"}""");
        var stopped = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("stopped-first") })).PodSandboxId;
        var removed = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("removed-at-once") })).PodSandboxId;

        // crictl stopp then rmp, and rmp alone (kubelet's order is the first).
        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = stopped });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = stopped });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = removed });

        foreach (var id in new[] { stopped, removed })
        {
            var dels = (await File.ReadAllLinesAsync(log)).Where(l => l.StartsWith("DEL ", StringComparison.Ordinal) && l.Contains(id, StringComparison.Ordinal)).ToList();
            Assert.StartsWith($"DEL netns={Path.Combine(daemon.StatePath, "sandboxes", id, "ns", "net")} ", Assert.Single(dels), StringComparison.Ordinal);
            // Lines are "<time> <level>: <category> <message>".
            Assert.DoesNotContain(daemon.Output.Split('\n'), l => (l.Contains(" warn: ", StringComparison.Ordinal) || l.Contains(" fail: ", StringComparison.Ordinal)) && l.Contains(id, StringComparison.Ordinal));
        }
        Assert.Empty(network.Leases());
    }

    [Fact]
    public async Task Network_readiness_follows_the_CNI_config()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        var before = (await daemon.Runtime.StatusAsync(new StatusRequest())).Status.Conditions.Single(c => c.Type == "NetworkReady");
        Assert.False(before.Status);
        Assert.Equal("NetworkPluginNotReady", before.Reason);
        Assert.Contains("no network config found", before.Message, StringComparison.Ordinal);

        using var network = TestNetwork.Create(daemon);

        var after = (await daemon.Runtime.StatusAsync(new StatusRequest())).Status.Conditions.Single(c => c.Type == "NetworkReady");
        Assert.True(after.Status);
    }

    [Fact]
    public async Task A_failing_plugin_leaves_nothing_behind()
    {
        using var plugins = new FakePlugins();
        plugins.FailingAdd("berth-fail", "refused by the test");
        await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { CniBinDirs = ["/usr/lib/cni", plugins.Directory] });
        using var network = TestNetwork.Create(daemon, """{"type":"berth-fail"}""");
        var veths = Host.VethCount();

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("doomed") }));

        Assert.Contains("CNI ADD", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("refused by the test", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
        Assert.Equal(veths, Host.VethCount());
        Assert.Empty(network.Leases());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(daemon.StatePath, "sandboxes")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(daemon.RootPath, "sandboxes")));
    }

    [Fact]
    public async Task The_same_metadata_twice_is_AlreadyExists()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon);
        var config = Pod("twice");
        var id = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;

        var error = await Assert.ThrowsAsync<RpcException>(async () => await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config }));

        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);
        Assert.Contains(id, error.Status.Detail, StringComparison.Ordinal);
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
    }

    [Fact]
    public async Task List_filters_by_id_state_and_labels()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon);
        var a = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("la") })).PodSandboxId;
        var b = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("lb") })).PodSandboxId;
        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = b });

        async Task<string[]> Ids(PodSandboxFilter filter) =>
            [.. (await daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = filter })).Items.Select(i => i.Id)];

        Assert.Equal([a], await Ids(new PodSandboxFilter { Id = a }));
        Assert.Equal([a], await Ids(new PodSandboxFilter { Id = a[..12] }));
        Assert.Equal([a], await Ids(new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxReady } }));
        Assert.Equal([b], await Ids(new PodSandboxFilter { LabelSelector = { ["app"] = "lb" } }));
        Assert.Empty(await Ids(new PodSandboxFilter { LabelSelector = { ["app"] = "none" } }));
        foreach (var id in new[] { a, b }) await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
    }

    [Fact]
    public async Task A_pod_survives_a_berthd_crash_and_restart()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        TestNetwork? network = null;
        try
        {
            string id;
            await using (var first = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory }))
            {
                network = TestNetwork.Create(first);
                id = (await first.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = Pod("survivor") })).PodSandboxId;
                first.Signal(Tmds.Linux.LibC.SIGKILL);
                await first.WaitForExitAsync(TimeSpan.FromSeconds(20));
            }
            await using var second = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
            var status = (await second.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id })).Status;
            Assert.Equal(PodSandboxState.SandboxReady, status.State);
            Assert.Equal([status.Network.Ip], network.Leases());
            await second.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
            Assert.Empty(network.Leases());
        }
        finally
        {
            network?.Dispose();
            Directory.Delete(directory, recursive: true);
        }
    }
}
