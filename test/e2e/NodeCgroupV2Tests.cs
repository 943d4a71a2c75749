using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>
/// Containers on the node shape Kubernetes 1.35 requires, pure cgroup v2, in a guest booted for the purpose: the
/// resources CRI sets reach the v2 files, updates and OOM kills are seen, stats come from v2, for runc and crun.
/// </summary>
[Collection("node-vm")]
public sealed class NodeCgroupV2Tests(NodeTestBed bed) : IClassFixture<NodeTestBed>
{
    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task Resources_reach_the_cgroup_v2_files_and_updates_change_them(string handler)
    {
        var (podId, pod) = await bed.RunPodAsync($"resources-{(handler.Length == 0 ? "runc" : handler)}", handler);
        try
        {
            var id = await bed.RunAsync(podId, pod, "app", new LinuxContainerResources
            {
                MemoryLimitInBytes = 64 << 20,
                CpuQuota = 50_000,
                CpuPeriod = 100_000,
                CpuShares = 512,
            }, "sleep", "600");
            // The container's own cgroup is its root (a cgroup namespace), as on a node.
            Assert.Equal("0::/", await bed.ExecAsync(id, "cat", "/proc/self/cgroup"));
            Assert.Equal("67108864", await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/memory.max"));
            Assert.Equal("50000 100000", await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/cpu.max"));
            Assert.NotEqual("100", await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/cpu.weight"));

            await bed.Vm.Runtime.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
            {
                ContainerId = id,
                Linux = new LinuxContainerResources { MemoryLimitInBytes = 128 << 20, CpuQuota = 20_000, CpuPeriod = 100_000 },
            });
            Assert.Equal("134217728", await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/memory.max"));
            Assert.Equal("20000 100000", await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/cpu.max"));
            var status = (await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
            Assert.Equal(128 << 20, status.Resources.Linux.MemoryLimitInBytes);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task Swap_hugepage_unified_and_pids_limits_reach_the_cgroup_v2_files(string handler)
    {
        Assert.Equal("33554432\n4194304\n50331648\n1024", await bed.OtherLimitsAsync(handler));
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task A_container_over_its_memory_limit_is_OOMKilled(string handler)
    {
        var (podId, pod) = await bed.RunPodAsync($"oom-{(handler.Length == 0 ? "runc" : handler)}", handler);
        try
        {
            // A string that doubles until memory.max stops it.
            var id = await bed.RunAsync(podId, pod, "hog", new LinuxContainerResources { MemoryLimitInBytes = 32 << 20 },
                "sh", "-c", "x=berth; while true; do x=$x$x; done");
            var status = await bed.WaitExitedAsync(id, TimeSpan.FromMinutes(2));
            Assert.Equal(("OOMKilled", 137), (status.Reason, status.ExitCode));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task Stats_come_from_the_v2_files(string handler)
    {
        var (podId, pod) = await bed.RunPodAsync($"stats-{(handler.Length == 0 ? "runc" : handler)}", handler);
        try
        {
            var id = await bed.RunAsync(podId, pod, "busy", null, "sh", "-c", "yes > /dev/null & sleep 600");
            var stats = await bed.BusyStatsAsync(id);
            Assert.True(stats.Cpu?.UsageCoreNanoSeconds?.Value > 0, "no CPU usage");
            Assert.True(stats.Memory?.WorkingSetBytes?.Value > 0, "no working set");
            // Pressure stall information exists only on v2: cpu.pressure, memory.pressure and io.pressure.
            Assert.NotNull(stats.Cpu.Psi?.Some);
            Assert.NotNull(stats.Memory.Psi?.Some);
            Assert.NotNull(stats.Io?.Psi?.Some);

            var metrics = (await bed.Vm.Runtime.ListPodSandboxMetricsAsync(new ListPodSandboxMetricsRequest())).PodMetrics.Single(m => m.PodSandboxId == podId);
            var cpu = metrics.ContainerMetrics.Single(c => c.ContainerId == id).Metrics.Single(m => m.Name == "container_cpu_usage_seconds_total");
            Assert.Contains("busy", cpu.LabelValues);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_pod_cgroup_takes_its_containers_and_its_update_and_nothing_is_left_after_removal()
    {
        var uid = Guid.NewGuid().ToString("N");
        var parent = $"/kubepods/burstable/pod{uid}";
        var (podId, pod) = await bed.RunPodAsync("pod-cgroup", cgroupParent: parent);
        var (observerPodId, observerPod) = await bed.RunPodAsync("observer", privileged: true);
        try
        {
            var id = await bed.RunAsync(podId, pod, "app", new LinuxContainerResources { MemoryLimitInBytes = 64 << 20 }, "sleep", "600");
            // A privileged container has no cgroup namespace: it sees the node's whole hierarchy.
            var observer = await bed.RunAsync(observerPodId, observerPod, "observer", null, privileged: true, "sleep", "600");
            Assert.Equal("67108864", await bed.ExecAsync(observer, "cat", $"/sys/fs/cgroup{parent}/{id}/memory.max"));

            await bed.Vm.Runtime.UpdatePodSandboxResourcesAsync(new UpdatePodSandboxResourcesRequest
            {
                PodSandboxId = podId,
                Resources = new LinuxContainerResources { MemoryLimitInBytes = 256 << 20, CpuQuota = 100_000, CpuPeriod = 100_000 },
            });
            Assert.Equal("268435456", await bed.ExecAsync(observer, "cat", $"/sys/fs/cgroup{parent}/memory.max"));
            Assert.Equal("100000 100000", await bed.ExecAsync(observer, "cat", $"/sys/fs/cgroup{parent}/cpu.max"));

            await bed.RemovePodAsync(podId);
            // The pod cgroup is kubelet's to remove; the container's below it is gone.
            Assert.Equal("", await bed.ExecAsync(observer, "sh", "-c", $"for d in /sys/fs/cgroup{parent}/*/; do [ -d \"$d\" ] && echo \"$d\"; done; true"));
            Assert.DoesNotContain(id, await bed.ExecAsync(observer, "ls", "/sys/fs/cgroup/berth"), StringComparison.Ordinal);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            await bed.RemovePodAsync(observerPodId);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task A_berthd_killed_and_started_again_finds_its_containers_running(string handler)
    {
        var (podId, pod) = await bed.RunPodAsync($"restart-{(handler.Length == 0 ? "runc" : handler)}", handler);
        try
        {
            var id = await bed.RunAsync(podId, pod, "keeps", null, "sleep", "600");
            var processes = await bed.ProcessesOfAsync(id);

            // The guest's script starts berthd again, as berth.service's Restart=always would.
            await bed.Vm.ShellAsync("pkill -9 -x berthd");
            await bed.Vm.WaitServingAsync(TimeSpan.FromMinutes(1));

            var listed = (await bed.Vm.Runtime.ListContainersAsync(new ListContainersRequest())).Containers.Single(c => c.Id == id);
            Assert.Equal(ContainerState.ContainerRunning, listed.State);
            Assert.Equal(processes, await bed.ProcessesOfAsync(id));
            // The recovered container is still managed: an update reaches its cgroup.
            await bed.Vm.Runtime.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
            {
                ContainerId = id, Linux = new LinuxContainerResources { MemoryLimitInBytes = 64 << 20 },
            });
            Assert.Equal("67108864", await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/memory.max"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        Assert.Equal("", await bed.Vm.ShellAsync("pgrep -f 'berth-shim run'; true"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task A_stop_right_after_start_reaches_an_init_that_installs_its_handler_late(string handler)
    {
        var (podId, pod) = await bed.RunPodAsync($"late-trap-{(handler.Length == 0 ? "runc" : handler)}", handler);
        try
        {
            // PID 1 of its PID namespace with no TERM handler at first: the kernel drops a SIGTERM sent before the trap.
            var id = await bed.RunAsync(podId, pod, "late-trap", null, "sh", "-c", "sleep 0.2; trap 'exit 42' TERM; while true; do sleep 0.05; done");
            var watch = System.Diagnostics.Stopwatch.StartNew();
            await bed.Vm.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 120 });
            Assert.InRange(watch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(60));
            var status = (await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
            Assert.Equal((ContainerState.ContainerExited, 42), (status.State, status.ExitCode));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task A_CDI_device_reaches_the_container_and_the_device_cgroup_follows_its_permissions(string handler)
    {
        var runtime = handler.Length == 0 ? "runc" : handler;
        var data = $"/run/berth-test-cdi-data-{runtime}";
        await bed.WriteInGuestAsync($"{data}/firmware.bin", "vendor firmware\n");
        // /dev/kmsg is not among the devices runtimes allow by default, and writing it takes no capability: its
        // device cgroup rule alone decides (an eBPF program on cgroup v2).
        await bed.WriteInGuestAsync($"{NodeTestBed.CdiSpecDirectory}/{runtime}.json", $$"""
            {
              "cdiVersion": "0.6.0", "kind": "vendor.example/{{runtime}}",
              "containerEdits": { "env": ["VENDOR=1"], "mounts": [ { "hostPath": "{{data}}", "containerPath": "/opt/vendor", "options": ["ro", "bind"] } ] },
              "devices": [
                { "name": "open", "containerEdits": { "deviceNodes": [ { "path": "/dev/vendor-kmsg", "hostPath": "/dev/kmsg", "permissions": "w" }, { "path": "/dev/vendor-null", "hostPath": "/dev/null" } ] } },
                { "name": "locked", "containerEdits": { "deviceNodes": [ { "path": "/dev/vendor-kmsg", "hostPath": "/dev/kmsg", "permissions": "none" } ] } }
              ]
            }
            """);
        var (podId, pod) = await bed.RunPodAsync($"cdi-{runtime}", handler);
        try
        {
            var open = await bed.RunAsync(podId, pod, "open", null, privileged: false, [$"vendor.example/{runtime}=open"], "sleep", "600");
            Assert.Equal("1 vendor firmware", await bed.ExecAsync(open, "sh", "-c", "echo $VENDOR $(cat /opt/vendor/firmware.bin)"));
            Assert.Equal("1 3", await bed.ExecAsync(open, "busybox", "stat", "-c", "%t %T", "/dev/vendor-null"));
            await bed.ExecAsync(open, "sh", "-c", $"echo berth-cdi-{runtime} > /dev/vendor-kmsg");
            var locked = await bed.RunAsync(podId, pod, "locked", null, privileged: false, [$"vendor.example/{runtime}=locked"], "sleep", "600");
            var refused = await bed.Vm.Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = locked, Timeout = 60, Cmd = { "sh", "-c", "echo x > /dev/vendor-kmsg" } });
            Assert.Contains("Operation not permitted", refused.Stderr.ToStringUtf8(), StringComparison.Ordinal);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            await bed.Vm.ShellAsync($"rm -rf {data} {NodeTestBed.CdiSpecDirectory}/{runtime}.json");
        }
    }

    [Fact]
    public async Task Container_events_arrive_in_order()
    {
        Assert.Equal([ContainerEventType.ContainerCreatedEvent, ContainerEventType.ContainerStartedEvent, ContainerEventType.ContainerStoppedEvent],
            await bed.EventsOfAShortContainerAsync("events"));
    }
}

[CollectionDefinition("node-vm", DisableParallelization = true)]
public sealed class NodeVmCollection;
