using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>
/// The README's quick start on a booted node: the .deb installed with dpkg -i on systemd in the pure cgroup v2
/// guest, then a pod through the socket (what crictl runp sends) and a Pod manifest through the installed berth.
/// </summary>
[Collection("node-vm")]
public sealed class NodePackageTests(PackagedNodeTestBed bed) : IClassFixture<PackagedNodeTestBed>
{
    [Fact]
    public async Task Dpkg_i_enables_and_starts_berth_on_the_packaged_config()
    {
        Assert.Equal("enabled\nactive", await bed.Vm.ShellAsync("systemctl is-enabled berth; systemctl is-active berth"));
        Assert.Equal("/usr/bin/berthd --config /etc/berth/config.toml",
            await bed.Vm.ShellAsync("systemctl show berth -p ExecStart --value | sed -n 's/.*argv\\[\\]=\\([^;]*\\) ;.*/\\1/p'"));
        Assert.Equal("install ok installed", await bed.Vm.ShellAsync("dpkg-query -W -f='${Status}' berth"));
        var dump = await bed.Vm.ShellAsync("berthd config dump");
        Assert.Contains("shim_binary = \"/usr/bin/berth-shim\"", dump, StringComparison.Ordinal);
        Assert.Contains("log_level = \"debug\"", dump, StringComparison.Ordinal);
        var config = await bed.Vm.Runtime.RuntimeConfigAsync(new RuntimeConfigRequest());
        Assert.Equal(CgroupDriver.Systemd, config.Linux.CgroupDriver);
    }

    [Fact]
    public async Task A_pod_as_crictl_runp_sends_it_joins_the_packaged_bridge_network_and_leaves_nothing()
    {
        // crictl runp's pod.json at its smallest: metadata, and a network namespace of the pod's own.
        var pod = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = "runp", Namespace = "default", Uid = Guid.NewGuid().ToString() },
            Linux = new LinuxPodSandboxConfig(),
        };
        var podId = (await bed.Vm.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
        try
        {
            var status = (await bed.Vm.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId })).Status;
            Assert.Equal(PodSandboxState.SandboxReady, status.State);
            Assert.StartsWith("10.89.", status.Network.Ip, StringComparison.Ordinal);
            var config = new ContainerConfig
            {
                Metadata = new ContainerMetadata { Name = "app" }, Image = new ImageSpec { Image = bed.Image }, Linux = new LinuxContainerConfig(),
            };
            config.Command.AddRange(["sleep", "600"]);
            var id = (await bed.Vm.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
            await bed.Vm.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            // The pod's eth0 and the node's bridge are the two ends of the packaged network.
            Assert.Equal("up", await bed.ExecAsync(id, "cat", "/sys/class/net/eth0/operstate"));
            Assert.Contains("10.89.0.1/16", await bed.Vm.ShellAsync("ip -4 addr show berth0"), StringComparison.Ordinal);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        Assert.Equal("", await bed.Vm.ShellAsync("ip -o link show type veth; ls /var/run/netns 2>/dev/null; true"));
    }

    [Fact]
    public async Task The_installed_berth_plays_a_manifest_into_its_systemd_slice_and_down_removes_it()
    {
        var manifest = Path.Combine(bed.Vm.Directory, "web.yaml");
        await File.WriteAllTextAsync(manifest, """
            apiVersion: v1
            kind: Pod
            metadata: {name: web}
            spec:
              containers:
              - name: app
                image: __IMAGE__
                command: [/bin/sh, -c, "echo serving; sleep 600"]
                resources: {requests: {cpu: 100m, memory: 16Mi}}
                volumeMounts: [{name: shared, mountPath: /shared}]
              - name: sidecar
                image: __IMAGE__
                command: [sleep, "600"]
                volumeMounts: [{name: shared, mountPath: /shared}]
              volumes: [{name: shared, emptyDir: {}}]
            """.Replace("__IMAGE__", bed.Image, StringComparison.Ordinal));
        var played = await bed.Vm.ShellAsync($"berth play -d {manifest}; echo exit=$?", TimeSpan.FromMinutes(4));
        string uid = "";
        try
        {
            Assert.EndsWith("exit=0", played, StringComparison.Ordinal);
            var sandbox = Assert.Single((await bed.Vm.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items, p => p.Metadata.Name == "web");
            uid = sandbox.Metadata.Uid;
            var slice = $"berth_play-burstable-pod{uid.Replace('-', '_')}.slice";
            var ps = await bed.Vm.ShellAsync("berth ps");
            Assert.Contains("app", ps, StringComparison.Ordinal);
            Assert.Contains("sidecar", ps, StringComparison.Ordinal);
            Assert.Equal("serving", await bed.Vm.ShellAsync("berth logs app"));
            var app = (await bed.Vm.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = sandbox.Id } }))
                .Containers.Single(c => c.Metadata.Name == "app");
            Assert.Equal(slice, await bed.Vm.ShellAsync($"systemctl show -p Slice --value berth-{app.Id}.scope"));
            // 100m requested: 102 shares, cpu.weight 4 on cgroup v2 (runc's and crun's conversion), in the scope under the slice.
            Assert.Equal("4", await bed.Vm.ShellAsync("berth exec app -- cat /sys/fs/cgroup/cpu.weight"));
        }
        finally
        {
            var down = await bed.Vm.ShellAsync($"berth play --down {manifest}; echo exit=$?", TimeSpan.FromMinutes(4));
            Assert.EndsWith("exit=0", down, StringComparison.Ordinal);
        }
        Assert.Equal("", await bed.Vm.ShellAsync("berth pods -q"));
        Assert.Equal("", await bed.Vm.ShellAsync($"systemctl list-units --all --no-legend 'berth_play*' 'berth-*.scope'; ls -d /var/log/pods/default_web_{uid} 2>/dev/null; true"));
    }
}
