using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>
/// berthd as the shipped berth.service under systemd as PID 1, in the pure cgroup v2 guest, where its cgroup driver
/// is systemd by default, as kubelet's is there.
/// </summary>
[Collection("node-vm")]
public sealed class NodeServiceTests(SystemdNodeTestBed bed) : IClassFixture<SystemdNodeTestBed>
{
    [Fact]
    public async Task The_unit_is_a_notify_service_that_systemd_saw_ready()
    {
        var unit = await bed.Vm.ShellAsync("systemctl show berth -p ActiveState -p SubState -p Type -p NotifyAccess -p Delegate -p KillMode -p WatchdogUSec -p StatusText");
        foreach (var property in new[]
                 {
                     "ActiveState=active", "SubState=running", "Type=notify", "NotifyAccess=main", "Delegate=yes", "KillMode=process",
                     "WatchdogUSec=1min", "StatusText=serving CRI v1 on /run/berth/berth.sock",
                 })
            Assert.Contains(property, unit, StringComparison.Ordinal);
    }

    [Fact]
    public async Task berthd_pings_the_watchdog_at_half_its_interval()
    {
        // systemd stamps each WATCHDOG=1 it receives; with WatchdogSec=60 berthd sends one every 30 s.
        async Task<long> LastPingAsync() => long.Parse(await bed.Vm.ShellAsync("systemctl show berth -p WatchdogTimestampMonotonic --value"),
            System.Globalization.CultureInfo.InvariantCulture);
        var first = await LastPingAsync();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (await LastPingAsync() == first)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(45), "no WATCHDOG=1 within 45 s");
            await Task.Delay(1000);
        }
        // Before its first ping the stamp is 0.
        if (first != 0) Assert.InRange(await LastPingAsync() - first, 25_000_000, 35_000_000);
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task A_restart_of_the_service_keeps_every_container_running_and_listed(string handler)
    {
        var (podId, pod) = await bed.RunPodAsync($"restart-{(handler.Length == 0 ? "runc" : handler)}", handler);
        try
        {
            var id = await bed.RunAsync(podId, pod, "keeps", null, "sleep", "600");
            var processes = await bed.ProcessesOfAsync(id);
            var before = await bed.Vm.ShellAsync("systemctl show berth -p MainPID --value");

            // Type=notify: this returns once the new berthd sent READY=1.
            var restart = await bed.Vm.ShellAsync("systemctl restart berth 2>&1");
            Assert.True(restart.Length == 0, $"systemctl restart berth: {restart}\n{bed.Vm.Describe()}");
            Assert.NotEqual(before, await bed.Vm.ShellAsync("systemctl show berth -p MainPID --value"));
            Assert.Equal("active", await bed.Vm.ShellAsync("systemctl is-active berth"));

            var listed = (await bed.Vm.Runtime.ListContainersAsync(new ListContainersRequest())).Containers.Single(c => c.Id == id);
            Assert.Equal(ContainerState.ContainerRunning, listed.State);
            Assert.Equal(processes, await bed.ProcessesOfAsync(id));
        }
        finally
        {
            // A berthd that did not come back cannot remove anything; the failure above says why.
            if (await bed.Vm.ShellAsync("systemctl is-active berth") == "active") await bed.RemovePodAsync(podId);
        }
        Assert.Equal("", await bed.Vm.ShellAsync("pgrep -f 'berth-shim run'; true"));
    }

    [Fact]
    public async Task The_cgroup_driver_is_systemd_and_RuntimeConfig_says_so()
    {
        var config = await bed.Vm.Runtime.RuntimeConfigAsync(new RuntimeConfigRequest());
        Assert.Equal(CgroupDriver.Systemd, config.Linux.CgroupDriver);
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task A_container_is_a_scope_in_its_pods_slice_with_its_resources_and_is_gone_after_removal(string handler)
    {
        var uid = Guid.NewGuid().ToString("N");
        var slice = $"kubepods-burstable-pod{uid}.slice";
        var sliceDirectory = $"/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/{slice}";
        var (podId, pod) = await bed.RunPodAsync($"scope-{(handler.Length == 0 ? "runc" : handler)}", handler, cgroupParent: slice);
        string id;
        try
        {
            id = await bed.RunAsync(podId, pod, "app", new LinuxContainerResources { MemoryLimitInBytes = 64 << 20, CpuQuota = 50_000, CpuPeriod = 100_000 },
                "sh", "-c", "yes > /dev/null & sleep 600");
            Assert.Equal("active", await bed.Vm.ShellAsync($"systemctl is-active berth-{id}.scope"));
            Assert.Equal(slice, await bed.Vm.ShellAsync($"systemctl show -p Slice --value berth-{id}.scope"));
            // crun puts the processes in <scope>/container, runc in the scope: berthd reads where the init is.
            Assert.Equal("67108864", await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/memory.max"));
            Assert.Equal("50000 100000", await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/cpu.max"));

            await bed.Vm.Runtime.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
            {
                ContainerId = id, Linux = new LinuxContainerResources { MemoryLimitInBytes = 128 << 20 },
            });
            Assert.Equal("134217728", await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/memory.max"));

            // Stats and the pod's own figures are read from the scope and the slice.
            var stats = await bed.BusyStatsAsync(id);
            Assert.True(stats.Cpu?.UsageCoreNanoSeconds?.Value > 0, "no CPU usage read from the scope");
            var podStats = (await bed.Vm.Runtime.PodSandboxStatsAsync(new PodSandboxStatsRequest { PodSandboxId = podId })).Stats;
            Assert.True(podStats.Linux.Memory?.WorkingSetBytes?.Value > 0, "no memory read from the slice");
            var metrics = (await bed.Vm.Runtime.ListPodSandboxMetricsAsync(new ListPodSandboxMetricsRequest())).PodMetrics.Single(m => m.PodSandboxId == podId);
            Assert.Contains(metrics.ContainerMetrics.Single(c => c.ContainerId == id).Metrics, m => m.Name == "container_cpu_usage_seconds_total");

            await bed.Vm.Runtime.UpdatePodSandboxResourcesAsync(new UpdatePodSandboxResourcesRequest
            {
                PodSandboxId = podId, Resources = new LinuxContainerResources { MemoryLimitInBytes = 256 << 20 },
            });
            Assert.Equal("268435456", await bed.Vm.ShellAsync($"cat {sliceDirectory}/memory.max"));

            var hog = await bed.RunAsync(podId, pod, "hog", new LinuxContainerResources { MemoryLimitInBytes = 32 << 20 },
                "sh", "-c", "x=berth; while true; do x=$x$x; done");
            var oom = await bed.WaitExitedAsync(hog, TimeSpan.FromMinutes(2));
            Assert.Equal(("OOMKilled", 137), (oom.Reason, oom.ExitCode));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        Assert.Equal("", await bed.Vm.ShellAsync($"systemctl list-units --all --no-legend 'berth-*.scope' | grep -v berth-node; ls -d {sliceDirectory}/berth-* 2>/dev/null; true"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task OOM_kills_are_told_apart_from_other_kills_although_each_scope_goes_with_its_container(string handler)
    {
        // systemd removes a scope, and its memory.events, as its last process dies. Each round, a container over its
        // limit must be OOMKilled, and a sibling in the same pod slice killed by SIGKILL afterwards must not: the pod's
        // hierarchical oom_kill count rose, but the sibling's own cgroup counted nothing.
        var slice = $"kubepods-burstable-pod{Guid.NewGuid():N}.slice";
        var (podId, pod) = await bed.RunPodAsync($"oom-rounds-{(handler.Length == 0 ? "runc" : handler)}", handler, cgroupParent: slice);
        try
        {
            for (var round = 0; round < OomRounds; round++)
            {
                var sibling = await bed.RunAsync(podId, pod, $"sibling-{round}", null, "sleep", "600");
                var hog = await bed.RunAsync(podId, pod, $"hog-{round}", new LinuxContainerResources { MemoryLimitInBytes = 32 << 20 },
                    "sh", "-c", "x=berth; while true; do x=$x$x; done");
                var oom = await bed.WaitExitedAsync(hog, TimeSpan.FromMinutes(2));
                Assert.Equal(("OOMKilled", 137, round), (oom.Reason, oom.ExitCode, round));
                await bed.Vm.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = sibling, Timeout = 0 });
                var killed = (await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = sibling })).Status;
                Assert.Equal(("Error", 137, round), (killed.Reason, killed.ExitCode, round));
            }
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task An_NRI_plugins_cpuset_env_and_rlimit_reach_a_container_in_a_scope(string handler)
    {
        var name = handler.Length == 0 ? "runc" : handler;
        var behavior = $"/run/nri-{name}.json";
        await bed.WriteInGuestAsync(behavior, """
            {"events": ["CreateContainer"], "env": {"NRI_NODE": "yes"}, "cpuset": "1", "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 2222, "soft": 1111}]}
            """);
        // An external plugin in the guest, on berthd's default NRI socket, as a node's plugin DaemonSet would run; a
        // transient unit of its own, so the guest's shell returns and the test stops it by name. Without default
        // dependencies: they would pull in basic.target, whose tmp.mount hides the berthd config this guest reads from /tmp.
        var unit = $"nri-test-{name}";
        await bed.Vm.ShellAsync(
            $"systemd-run --unit {unit} -p DefaultDependencies=no --quiet {NriPluginProcess.Binary} --socket /var/run/nri/nri.sock --name node-{name} --idx 10 --behavior {behavior}");
        var slice = $"kubepods-burstable-pod{Guid.NewGuid():N}.slice";
        string? podId = null;
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (!(await bed.Vm.Runtime.StatusAsync(new StatusRequest { Verbose = true })).Info["nri"].Contains($"\"node-{name}\"", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the NRI plugin never connected: {await bed.Vm.ShellAsync($"journalctl -u {unit} --no-pager | tail -20")}");
                await Task.Delay(500);
            }
            (podId, var pod) = await bed.RunPodAsync($"nri-{name}", handler, cgroupParent: slice);
            var id = await bed.RunAsync(podId, pod, "app", null, "sleep", "600");
            Assert.Equal("active", await bed.Vm.ShellAsync($"systemctl is-active berth-{id}.scope"));
            Assert.Equal("yes", await bed.ExecAsync(id, "sh", "-c", "echo $NRI_NODE"));
            Assert.Equal("1", await bed.ExecAsync(id, "sh", "-c", "grep Cpus_allowed_list /proc/1/status | cut -f2"));
            Assert.Matches(@"Max open files\s+1111\s+2222", await bed.ExecAsync(id, "grep", "Max open files", "/proc/1/limits"));
        }
        finally
        {
            if (podId is not null) await bed.RemovePodAsync(podId);
            await bed.Vm.ShellAsync($"systemctl stop {unit}; true");
        }
    }

    /// <summary>OOM rounds per runtime in one run (BERTH_OOM_ROUNDS sets more, to measure).</summary>
    private static int OomRounds => int.TryParse(Environment.GetEnvironmentVariable("BERTH_OOM_ROUNDS"), out var rounds) ? rounds : 5;

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task Swap_hugepage_unified_and_pids_limits_reach_a_scope(string handler)
    {
        Assert.Equal("33554432\n4194304\n50331648\n1024", await bed.OtherLimitsAsync(handler, "kubepods-burstable.slice"));
    }

    [Fact]
    public async Task Container_events_arrive_in_order_under_the_systemd_driver()
    {
        Assert.Equal([ContainerEventType.ContainerCreatedEvent, ContainerEventType.ContainerStartedEvent, ContainerEventType.ContainerStoppedEvent],
            await bed.EventsOfAShortContainerAsync("events", cgroupParent: "kubepods-besteffort.slice"));
    }
}
