using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>berthd as the shipped berth.service under systemd as PID 1, in the pure cgroup v2 guest.</summary>
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
    public async Task A_restart_of_the_service_keeps_every_container_running_and_listed()
    {
        var (podId, pod) = await bed.RunPodAsync("restart");
        try
        {
            var id = await bed.RunAsync(podId, pod, "keeps", null, "sleep", "600");
            var shims = await bed.Vm.ShellAsync("pgrep -f 'berth-shim run' | sort");
            // The start time of the container's init (field 22): the same process, not a restarted one.
            var init = await bed.ExecAsync(id, "cut", "-d", " ", "-f", "22", "/proc/1/stat");
            var before = await bed.Vm.ShellAsync("systemctl show berth -p MainPID --value");

            // Type=notify: this returns once the new berthd sent READY=1.
            Assert.Equal("", await bed.Vm.ShellAsync("systemctl restart berth"));
            Assert.NotEqual(before, await bed.Vm.ShellAsync("systemctl show berth -p MainPID --value"));
            Assert.Equal("active", await bed.Vm.ShellAsync("systemctl is-active berth"));

            var listed = (await bed.Vm.Runtime.ListContainersAsync(new ListContainersRequest())).Containers.Single(c => c.Id == id);
            Assert.Equal(ContainerState.ContainerRunning, listed.State);
            Assert.Equal(shims, await bed.Vm.ShellAsync("pgrep -f 'berth-shim run' | sort"));
            Assert.Equal(init, await bed.ExecAsync(id, "cut", "-d", " ", "-f", "22", "/proc/1/stat"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        Assert.Equal("", await bed.Vm.ShellAsync("pgrep -f 'berth-shim run'; true"));
    }
}
