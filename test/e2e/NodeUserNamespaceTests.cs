using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>
/// Pods in a user namespace of their own on the node shape (pure cgroup v2, Debian 12's 6.1 kernel), for runc and for
/// crun: crun refuses to run at all on this machine's hybrid cgroups, so the guest is where it is tried.
/// </summary>
[Collection("node-vm")]
public sealed class NodeUserNamespaceTests(NetworkedNodeTestBed bed) : IClassFixture<NetworkedNodeTestBed>
{
    private const uint HostId = 200000, Length = 65536;

    private static UserNamespace PodUserns()
    {
        var userns = new UserNamespace { Mode = NamespaceMode.Pod };
        userns.Uids.Add(new IDMapping { ContainerId = 0, HostId = HostId, Length = Length });
        userns.Gids.Add(new IDMapping { ContainerId = 0, HostId = HostId, Length = Length });
        return userns;
    }

    [Theory]
    [InlineData("")]
    [InlineData("crun")]
    public async Task Root_inside_is_an_unprivileged_range_on_the_node_and_files_keep_their_owners(string handler)
    {
        var (podId, pod) = await bed.RunPodAsync($"userns-{(handler.Length == 0 ? "runc" : handler)}", handler, userns: PodUserns());
        try
        {
            var id = await bed.RunAsync(podId, pod, "app", null, "sleep", "600");
            Assert.Equal("0 0", await bed.ExecAsync(id, "sh", "-c", "echo $(id -u) $(id -g)"));
            Assert.Equal($"0 {HostId} {Length}", string.Join(' ', (await bed.ExecAsync(id, "cat", "/proc/self/uid_map")).Split(' ', StringSplitOptions.RemoveEmptyEntries)));
            // The image's files are root's inside, not the range's nobody; the writable layer, /etc/hosts and /dev/shm are root's to write.
            Assert.Equal("0:0", await bed.ExecAsync(id, "busybox", "stat", "-c", "%u:%g", "/bin/busybox"));
            await bed.ExecAsync(id, "sh", "-c", "echo x > /made && echo '10.9.9.9 extra' >> /etc/hosts && echo y > /dev/shm/s");
            Assert.Equal("0:0", await bed.ExecAsync(id, "busybox", "stat", "-c", "%u:%g", "/made"));

            // On the node the container's process is the range's first ID.
            var verbose = await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = true });
            var pid = JsonDocument.Parse(verbose.Info["info"]).RootElement.GetProperty("pid").GetInt32();
            Assert.Equal($"{HostId} {HostId}", await bed.Vm.ShellAsync($"awk '/^Uid:/ {{print $2, $3}}' /proc/{pid}/status"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        Assert.Equal("", await bed.Vm.ShellAsync($"grep -c {podId} /proc/self/mountinfo | grep -v '^0$'; grep -c idmapped /proc/self/mountinfo | grep -v '^0$'; true"));
        // Stop then remove, as kubelet does: one CNI DEL, with the netns, and nothing to warn of.
        Assert.DoesNotContain(bed.Vm.Console.Split('\n'), l => l.Contains(podId, StringComparison.Ordinal) && l.Contains(" warn: ", StringComparison.Ordinal));
    }
}
