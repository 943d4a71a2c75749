using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

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
            // The same checkpoint as an image (one layer holding the archive's files, the manifest naming the
            // container, as checkpointctl and buildah build them) restores the same way.
            // The guest sees this machine's files read-only, so the archive comes out through its shell.
            var archiveBytes = Convert.FromBase64String(await bed.Vm.ShellAsync($"base64 -w0 {archive}"));
            var checkpointImage = await bed.PushAsync("checkpoints/counter", new TestImageBuilder()
                .Layer(archiveBytes).Annotation("org.criu.checkpoint.container.name", "counter").Build());
            await bed.Vm.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = checkpointImage } });
            var fromImage = await RunAsync(newPod, newConfig, Config("counter-image", checkpointImage, "sh", "-c", Counter));
            await Task.Delay(600);
            Assert.InRange(await CountAsync(fromImage), first + 1, first + 200);
            Assert.Equal("written-before", await bed.ExecAsync(fromImage, "cat", "/before"));

            // Killed in its own cgroup: the restore put it there, not back in the checkpointed container's.
            var cgroups = await bed.Vm.ShellAsync("for p in $(pgrep -f 'while true'); do cat /proc/$p/cgroup; done");
            Assert.Contains(restored, cgroups, StringComparison.Ordinal);
            Assert.DoesNotContain(id, cgroups, StringComparison.Ordinal);
            await bed.Vm.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = restored, Timeout = 1 }, deadline: DateTime.UtcNow.AddSeconds(30));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            if (restoredPod is not null) await bed.RemovePodAsync(restoredPod);
            await bed.Vm.ShellAsync("rm -rf /run/berth-test-checkpoints");
        }
    }

    [Fact]
    public async Task A_pod_is_checkpointed_whole_and_RestorePod_brings_it_back_with_its_containers_counting_on()
    {
        var (podId, pod) = await bed.RunPodAsync("ckpt-pod", ownNetwork: true);
        const string directory = "/run/berth-test-checkpoints/pod";
        string? restoredPod = null;
        try
        {
            var counter = await RunAsync(podId, pod, Config("counter", bed.Image, "sh", "-c", Counter));
            var other = await RunAsync(podId, pod, Config("other", bed.Image, "sh", "-c", "echo kept > /kept; exec sleep 100000"));
            while (await CountAsync(counter) < 5) await Task.Delay(200);

            await bed.Vm.Runtime.CheckpointPodAsync(new CheckpointPodRequest { PodSandboxId = podId, OutputPath = directory });
            Assert.Equal(PodSandboxState.SandboxReady, (await bed.Vm.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId })).Status.State);
            Assert.Equal("counter.dump\ncounter.tar\nother.dump\nother.tar\npod.dump\npod.options", await bed.Vm.ShellAsync($"ls {directory}"));
            using (var options = JsonDocument.Parse(await bed.Vm.ShellAsync($"cat {directory}/pod.options")))
                Assert.Equal(["counter", "other"], options.RootElement.GetProperty("containers").EnumerateArray().Select(c => c.GetString()));
            // A second checkpoint into the same place is refused, and the first stays whole.
            var again = await Assert.ThrowsAsync<RpcException>(() => bed.Vm.Runtime.CheckpointPodAsync(new CheckpointPodRequest { PodSandboxId = podId, OutputPath = directory }).ResponseAsync);
            Assert.Equal(StatusCode.AlreadyExists, again.StatusCode);
            var atCheckpoint = int.Parse(await bed.Vm.ShellAsync($"tar -xOf {directory}/counter.tar container.log | tail -1 | sed 's/.* count //'"), System.Globalization.CultureInfo.InvariantCulture);

            await bed.RemovePodAsync(podId);
            var restored = await bed.Vm.Runtime.RestorePodAsync(new RestorePodRequest { CheckpointPath = directory });
            restoredPod = restored.PodSandboxId;
            Assert.Equal(["counter", "other"], restored.RestoredContainers.Select(c => c.Name));
            var status = (await bed.Vm.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = restoredPod })).Status;
            Assert.Equal(("ckpt-pod", pod.Metadata.Uid, PodSandboxState.SandboxReady), (status.Metadata.Name, status.Metadata.Uid, status.State));
            var restoredCounter = restored.RestoredContainers[0].ContainerId;
            await Task.Delay(1000);
            Assert.InRange(await CountAsync(restoredCounter), 6, atCheckpoint + 200);
            // The log is the pod's, so the restored counter appends to what the first one wrote, from its dump's count on.
            var counts = (await bed.Vm.ShellAsync("sed 's/.* count //' /run/berth-test-logs/ckpt-pod/counter.log")).Split('\n')
                .Select(c => int.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            var restart = Enumerable.Range(1, counts.Count - 1).First(i => counts[i] <= counts[i - 1]);
            Assert.InRange(counts[restart], 6, atCheckpoint + 1);
            Assert.Equal(Enumerable.Range(counts[restart], counts.Count - restart), counts[restart..]);
            Assert.Equal("kept", await bed.ExecAsync(restored.RestoredContainers[1].ContainerId, "cat", "/kept"));
            Assert.Equal("sleep\0100000\0", await bed.ExecAsync(restored.RestoredContainers[1].ContainerId, "cat", "/proc/1/cmdline"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            if (restoredPod is not null) await bed.RemovePodAsync(restoredPod);
            await bed.Vm.ShellAsync("rm -rf /run/berth-test-checkpoints");
        }
    }

    [Fact]
    public async Task What_cannot_be_checkpointed_or_restored_gets_a_precise_status_and_leaves_nothing()
    {
        var (podId, pod) = await bed.RunPodAsync("ckpt-errors", ownNetwork: true);
        var (crunPodId, crunPod) = await bed.RunPodAsync("ckpt-errors-crun", "crun");
        var (emptyPodId, _) = await bed.RunPodAsync("ckpt-errors-empty");
        try
        {
            async Task<RpcException> Refused(Func<Task> call) => await Assert.ThrowsAsync<RpcException>(call);

            // crun 1.8.1, as Debian 12 builds it, has no checkpoint command.
            var crun = await RunAsync(crunPodId, crunPod, Config("counter", bed.Image, "sh", "-c", Counter));
            var noCriu = await Refused(() => bed.Vm.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = crun, Location = "/run/berth-test-checkpoints/crun.tar" }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, noCriu.StatusCode);
            Assert.Contains("crun checkpoint", noCriu.Status.Detail, StringComparison.Ordinal);
            Assert.Equal(ContainerState.ContainerRunning, (await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = crun })).Status.State);

            // An established TCP connection (the listener's end is IPv6, so both files count) CRIU will not dump without
            // --tcp-established: the dump fails, the container runs on, and no archive is left.
            var connected = await RunAsync(podId, pod, Config("connected", bed.Image, "sh", "-c",
                "sleep 100000 | /bin/busybox nc -l -p 7000 > /dev/null & sleep 1; sleep 100000 | /bin/busybox nc 127.0.0.1 7000"));
            for (var waited = 0; int.Parse(await bed.ExecAsync(connected, "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 | grep -c ' 01 ' || true"), System.Globalization.CultureInfo.InvariantCulture) < 2; waited++)
            {
                Assert.True(waited < 100, "the container's two nc never connected");
                await Task.Delay(200);
            }
            var tcp = await Refused(() => bed.Vm.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = connected, Location = "/run/berth-test-checkpoints/tcp.tar" }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, tcp.StatusCode);
            Assert.Contains("Connected TCP socket", tcp.Status.Detail, StringComparison.Ordinal);
            Assert.Equal(ContainerState.ContainerRunning, (await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = connected })).Status.State);
            Assert.Equal("2", await bed.ExecAsync(connected, "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 | grep -c ' 01 '"));

            // A checkpoint whose CRIU images are incomplete is taken in, and its restore fails at StartContainer with
            // FailedPrecondition and CRIU's error: the container is exited with StartError, no process or shim is left.
            var whole = await RunAsync(podId, pod, Config("whole", bed.Image, "sleep", "100000"));
            await bed.Vm.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = whole, Location = "/run/berth-test-checkpoints/whole.tar" });
            await bed.Vm.ShellAsync("cd /run/berth-test-checkpoints && mkdir cut && tar -xf whole.tar -C cut && rm cut/checkpoint/pstree.img && tar -cf cut.tar -C cut . && rm -r cut whole.tar");
            var shimsBefore = await bed.Vm.ShellAsync("pgrep -f 'berth-shim run' | wc -l");
            var cut = (await bed.Vm.Runtime.CreateContainerAsync(new CreateContainerRequest
            {
                PodSandboxId = podId, Config = Config("cut", "/run/berth-test-checkpoints/cut.tar"), SandboxConfig = pod,
            })).ContainerId;
            var restoreFailed = await Refused(() => bed.Vm.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = cut }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, restoreFailed.StatusCode);
            Assert.Contains("could not be restored from its checkpoint", restoreFailed.Status.Detail, StringComparison.Ordinal);
            var cutStatus = (await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = cut })).Status;
            Assert.Equal((ContainerState.ContainerExited, "StartError"), (cutStatus.State, cutStatus.Reason));
            Assert.Equal(shimsBefore, await bed.Vm.ShellAsync("pgrep -f 'berth-shim run' | wc -l"));
            await bed.Vm.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = cut });

            // A pod with its own user namespace: CRIU 3.17 neither dumps nor restores its idmapped mounts.
            var userns = new UserNamespace { Mode = NamespaceMode.Pod };
            userns.Uids.Add(new IDMapping { ContainerId = 0, HostId = 300000, Length = 65536 });
            userns.Gids.Add(new IDMapping { ContainerId = 0, HostId = 300000, Length = 65536 });
            var (usernsPodId, usernsPod) = await bed.RunPodAsync("ckpt-errors-userns", userns: userns);
            try
            {
                var inUserns = await RunAsync(usernsPodId, usernsPod, Config("sleeper", bed.Image, "sleep", "100000"));
                var dump = await Refused(() => bed.Vm.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = inUserns, Location = "/run/berth-test-checkpoints/userns.tar" }).ResponseAsync);
                Assert.Equal((StatusCode.FailedPrecondition, true), (dump.StatusCode, dump.Status.Detail.Contains("user namespace", StringComparison.Ordinal)));
                var restoreInto = await Refused(() => bed.Vm.Runtime.CreateContainerAsync(new CreateContainerRequest
                {
                    PodSandboxId = usernsPodId, Config = Config("cut", "/run/berth-test-checkpoints/cut.tar"), SandboxConfig = usernsPod,
                }).ResponseAsync);
                Assert.Equal((StatusCode.FailedPrecondition, true), (restoreInto.StatusCode, restoreInto.Status.Detail.Contains("user namespace", StringComparison.Ordinal)));
            }
            finally
            {
                await bed.RemovePodAsync(usernsPodId);
            }
            await bed.Vm.ShellAsync("rm -f /run/berth-test-checkpoints/cut.tar");

            var unknown = await Refused(() => bed.Vm.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = "f00d", Location = "/run/berth-test-checkpoints/x.tar" }).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
            var exited = await RunAsync(podId, pod, Config("exited", bed.Image, "true"));
            while ((await bed.Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = exited })).Status.State != ContainerState.ContainerExited) await Task.Delay(100);
            var notRunning = await Refused(() => bed.Vm.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = exited, Location = "/run/berth-test-checkpoints/x.tar" }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, notRunning.StatusCode);
            var relative = await Refused(() => bed.Vm.Runtime.CheckpointPodAsync(new CheckpointPodRequest { PodSandboxId = podId, OutputPath = "checkpoints" }).ResponseAsync);
            Assert.Equal((StatusCode.InvalidArgument, true), (relative.StatusCode, relative.Status.Detail.StartsWith("output_path", StringComparison.Ordinal)));
            var nothingRunning = await Refused(() => bed.Vm.Runtime.CheckpointPodAsync(new CheckpointPodRequest { PodSandboxId = emptyPodId, OutputPath = "/run/berth-test-checkpoints/none" }).ResponseAsync);
            Assert.Equal((StatusCode.FailedPrecondition, true), (nothingRunning.StatusCode, nothingRunning.Status.Detail.Contains("no running container", StringComparison.Ordinal)));
            Assert.Equal("", await bed.Vm.ShellAsync("ls /run/berth-test-checkpoints 2>/dev/null; find /var/lib/berth/containers/checkpoints -mindepth 1 2>/dev/null"));

            // An archive that is no checkpoint, as a container's image and as a pod's: InvalidArgument, and nothing made.
            await bed.Vm.ShellAsync("mkdir -p /run/berth-test-checkpoints/bad && cd /run/berth-test-checkpoints && echo x > f && tar -cf bad.tar f && tar -cf bad/a.tar f && echo '{\"version\":1,\"containers\":[\"a\"]}' > bad/pod.options");
            var containersBefore = (await bed.Vm.Runtime.ListContainersAsync(new ListContainersRequest())).Containers.Count;
            var badArchive = await Refused(() => bed.Vm.Runtime.CreateContainerAsync(new CreateContainerRequest
            {
                PodSandboxId = podId, Config = Config("restored", "/run/berth-test-checkpoints/bad.tar"), SandboxConfig = pod,
            }).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, badArchive.StatusCode);
            Assert.Contains("no checkpoint archive", badArchive.Status.Detail, StringComparison.Ordinal);
            var podsBefore = (await bed.Vm.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items.Count;
            var badPod = await Refused(() => bed.Vm.Runtime.RestorePodAsync(new RestorePodRequest { CheckpointPath = "/run/berth-test-checkpoints/bad" }).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, badPod.StatusCode);
            Assert.Contains("pod.dump", badPod.Status.Detail, StringComparison.Ordinal);
            // With a pod config of its own, the pod is made, the archive fails, and the pod goes again.
            var badWithConfig = await Refused(() => bed.Vm.Runtime.RestorePodAsync(new RestorePodRequest
            {
                CheckpointPath = "/run/berth-test-checkpoints/bad",
                Config = new PodSandboxConfig { Metadata = new PodSandboxMetadata { Name = "ckpt-bad", Namespace = "default", Uid = "bad-1" } },
                ContainerConfigs = { Config("a", "unused") },
            }).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, badWithConfig.StatusCode);
            var missing = await Refused(() => bed.Vm.Runtime.RestorePodAsync(new RestorePodRequest { CheckpointPath = "/run/berth-test-checkpoints/missing" }).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, missing.StatusCode);
            Assert.Equal(containersBefore, (await bed.Vm.Runtime.ListContainersAsync(new ListContainersRequest())).Containers.Count);
            Assert.Equal(podsBefore, (await bed.Vm.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items.Count);
            Assert.Equal("", await bed.Vm.ShellAsync("find /var/lib/berth/containers/restores /var/lib/berth/containers/checkpoints -mindepth 1 2>/dev/null || true"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            await bed.RemovePodAsync(crunPodId);
            await bed.RemovePodAsync(emptyPodId);
            await bed.Vm.ShellAsync("rm -rf /run/berth-test-checkpoints");
        }
    }
}
