using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>
/// Checkpoint and restore with CRIU, in the node guest: Debian 12's 6.1 kernel, where <c>criu check</c> passes (on this
/// machine's 6.18 it fails to fill its vDSO symbol table). A container that counts in memory is checkpointed, removed,
/// and restored into a new pod, where it counts on.
/// </summary>
[Collection("node-vm")]
public sealed class NodeCheckpointTests(NetworkedNodeTestBed bed) : IClassFixture<NetworkedNodeTestBed>
{
    private const string Counter = "i=0; while true; do i=$((i+1)); echo count $i; echo $i > /count; sleep 0.2; done";

    private static ContainerConfig Config(string name, string image, params string[] command)
    {
        var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = name }, Image = new ImageSpec { Image = image }, LogPath = $"{name}.log" };
        config.Command.AddRange(command);
        return config;
    }

    private async Task<string> RunAsync(string podId, PodSandboxConfig pod, ContainerConfig config)
    {
        var id = (await bed.Vm.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
        await bed.Vm.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        return id;
    }

    private async Task<int> CountAsync(string id) => int.Parse(await bed.ExecAsync(id, "cat", "/count"), System.Globalization.CultureInfo.InvariantCulture);

    private async Task<JsonDocument> ArchiveJsonAsync(string archive, string member) =>
        JsonDocument.Parse(await bed.Vm.ShellAsync($"tar -xOf {archive} {member}"));

    [Fact]
    public async Task A_counting_container_is_checkpointed_and_restored_into_a_new_pod_where_it_counts_on()
    {
        var (podId, pod) = await bed.RunPodAsync("ckpt-source", ownNetwork: true);
        var archive = "/run/berth-test-checkpoints/counter.tar";
        string? restoredPod = null;
        try
        {
            var id = await RunAsync(podId, pod, Config("counter", bed.Image, "sh", "-c", Counter));
            while (await CountAsync(id) < 10) await Task.Delay(200);
            await bed.ExecAsync(id, "sh", "-c", "echo written-before > /before && rm /bin/true");

            await bed.Vm.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = id, Location = archive, Timeout = 300 });
            // The container runs on after its checkpoint.
            var status = (await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
            Assert.Equal(ContainerState.ContainerRunning, status.State);
            var atCheckpoint = int.Parse(await bed.Vm.ShellAsync($"tar -xOf {archive} container.log | tail -1 | sed 's/.* count //'"), System.Globalization.CultureInfo.InvariantCulture);

            // The archive as checkpointctl reads it.
            var members = (await bed.Vm.ShellAsync($"tar -tf {archive}")).Split('\n').Select(m => m.TrimStart('.', '/')).ToHashSet();
            foreach (var member in new[] { "config.dump", "spec.dump", "rootfs-diff.tar", "deleted.files", "dump.log", "stats-dump", "container.log", "status", "checkpoint/inventory.img" })
                Assert.Contains(member, members);
            using (var config = await ArchiveJsonAsync(archive, "config.dump"))
            {
                Assert.Equal(id, config.RootElement.GetProperty("id").GetString());
                Assert.Equal("counter", config.RootElement.GetProperty("name").GetString());
                Assert.StartsWith("sha256:", config.RootElement.GetProperty("rootfsImageRef").GetString(), StringComparison.Ordinal);
            }
            using (var spec = await ArchiveJsonAsync(archive, "spec.dump"))
                Assert.Equal("counter", spec.RootElement.GetProperty("annotations").GetProperty("io.kubernetes.cri.container-name").GetString());
            using (var deleted = await ArchiveJsonAsync(archive, "deleted.files"))
                Assert.Contains("/bin/true", deleted.RootElement.EnumerateArray().Select(e => e.GetString()));
            Assert.Contains("before", await bed.Vm.ShellAsync($"tar -xOf {archive} rootfs-diff.tar | tar -t"), StringComparison.Ordinal);
            Assert.Equal("600", await bed.Vm.ShellAsync($"stat -c %a {archive}"));

            await bed.RemovePodAsync(podId);
            var (newPod, newConfig) = await bed.RunPodAsync("ckpt-target", ownNetwork: true);
            restoredPod = newPod;
            var restored = await RunAsync(newPod, newConfig, Config("counter", archive, "sh", "-c", Counter));
            var restoredStatus = (await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = restored })).Status;
            Assert.Equal(ContainerState.ContainerRunning, restoredStatus.State);
            // The count goes on from the checkpoint's, in memory, and the log goes on with it.
            await Task.Delay(1000);
            // It ran on between CRIU's dump and the copy of its log, so it comes back a few counts before the log's last.
            var restoredLog = (await bed.Vm.ShellAsync($"head -3 {restoredStatus.LogPath}")).Split('\n');
            var first = int.Parse(restoredLog[0][(restoredLog[0].LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(first, 11, atCheckpoint + 1);
            Assert.Equal([$"stdout F count {first}", $"stdout F count {first + 1}", $"stdout F count {first + 2}"], restoredLog.Select(l => l[(l.IndexOf(' ') + 1)..]));
            Assert.InRange(await CountAsync(restored), first + 2, first + 200);
            Assert.Equal("written-before", await bed.ExecAsync(restored, "cat", "/before"));
            Assert.NotEqual(0, (await bed.Vm.Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = restored, Cmd = { "ls", "/bin/true" }, Timeout = 30 })).ExitCode);
            // Killed in its own cgroup: the restore put it there, not back in the checkpointed container's.
            Assert.Contains(restored, await bed.Vm.ShellAsync($"cat /proc/$(pgrep -f 'while true' | head -1)/cgroup"), StringComparison.Ordinal);
            await bed.Vm.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = restored, Timeout = 1 }, deadline: DateTime.UtcNow.AddSeconds(30));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            if (restoredPod is not null) await bed.RemovePodAsync(restoredPod);
            await bed.Vm.ShellAsync("rm -rf /run/berth-test-checkpoints");
        }
    }
}
