using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>Containers outlive berthd: kill -9 and restart on the same state, and nothing running notices.</summary>
public sealed class ContainerRestartTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    // Only this test's shims: other test classes run containers at the same time.
    private static int[] Shims(string directory) =>
        Host.Run("pgrep", "-f", $"berth-shim run .*--bundle {directory}/state/") is { ExitCode: 0 } found
            ? [.. found.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)]
            : [];

    /// <summary>Alive and not a zombie (an orphan killed with its shim waits for the host's init to reap it).</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    [Fact]
    public async Task A_container_whose_shim_is_killed_is_killed_too_and_reported_exited()
    {
        var pod = bed.Pod("shim-killed", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var id = await bed.RunAsync(podId, pod, bed.Container("orphan", "sleep", "3600"));
            var verbose = await bed.Daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = true });
            using var info = System.Text.Json.JsonDocument.Parse(verbose.Info["info"]);
            var init = info.RootElement.GetProperty("pid").GetInt32();
            Assert.True(IsRunning(init));
            var shim = Host.Run("pgrep", "-f", $"berth-shim run --id {id}");
            Assert.Equal(0, shim.ExitCode);
            Host.Run("kill", "-9", shim.Output.Trim());

            var status = await bed.WaitExitedAsync(id, TimeSpan.FromSeconds(20));
            Assert.Equal(137, status.ExitCode);
            Assert.Equal("Error", status.Reason);
            Assert.Contains("berth-shim", status.Message, StringComparison.Ordinal);
            // The container's processes went with it (runc delete --force), and so did runc's state.
            Assert.False(IsRunning(init), $"the container's init {init} still runs");
            Assert.False(Directory.Exists(Path.Combine(bed.Daemon.StatePath, "containers", "runtime", "default", id)));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Twenty_running_containers_survive_kill_9_and_one_that_exits_meanwhile_reports_its_code()
    {
        var directory = Directory.CreateTempSubdirectory("be-").FullName;
        var options = new DaemonOptions { Directory = directory };
        try
        {
            BerthDaemon? second = null;
            var first = await BerthDaemon.StartAsync(options);
            try
            {
                await first.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Image } });
                var pod = bed.Pod("survivors", hostNetwork: true);
                var podId = (await first.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
                var ids = new List<string>();
                for (var i = 0; i < 20; i++)
                {
                    var config = bed.Container($"c{i}", "sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done");
                    var id = (await first.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
                    await first.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
                    ids.Add(id);
                }
                var exiting = bed.Container("exits-while-down", "sh", "-c", "sleep 2; exit 42");
                var exitingId = (await first.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = exiting, SandboxConfig = pod })).ContainerId;
                await first.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = exitingId });
                var shimsBefore = Shims(directory);
                Assert.Equal(21, shimsBefore.Length);

                first.Signal(Tmds.Linux.LibC.SIGKILL);
                await first.WaitForExitAsync(TimeSpan.FromSeconds(20));
                var log = Path.Combine(bed.LogDirectory("survivors"), "c0.log");
                var lengthAtCrash = new FileInfo(log).Length;
                await Task.Delay(3000); // the exiting container dies while berthd is down; the others keep logging
                Assert.True(new FileInfo(log).Length > lengthAtCrash, "the log stopped growing while berthd was down");

                second = await BerthDaemon.StartAsync(options);
                var listed = (await second.Runtime.ListContainersAsync(new ListContainersRequest())).Containers.ToDictionary(c => c.Id);
                Assert.Equal(21, listed.Count);
                Assert.All(ids, id => Assert.Equal(ContainerState.ContainerRunning, listed[id].State));
                var exited = (await second.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = exitingId })).Status;
                Assert.Equal(ContainerState.ContainerExited, exited.State);
                Assert.Equal(42, exited.ExitCode);
                Assert.Equal(20, Shims(directory).Length);

                // The restarted berthd still drives them: exec, stop, and the exit watch.
                var exec = new ExecSyncRequest { ContainerId = ids[0], Timeout = 10 };
                exec.Cmd.AddRange(["echo", "still-here"]);
                Assert.Equal("still-here\n", (await second.Runtime.ExecSyncAsync(exec)).Stdout.ToStringUtf8());
                await second.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = ids[1], Timeout = 0 });
                Assert.Equal(137, (await second.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = ids[1] })).Status.ExitCode);

                await second.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
                await second.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
                Assert.Empty((await second.Runtime.ListContainersAsync(new ListContainersRequest())).Containers);
                Assert.Empty(Shims(directory));
                Assert.Empty(Host.MountsUnder(directory));
                Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(directory, "state", "c")));
                Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(directory, "state", "containers", "runtime", "default")));
                Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(directory, "root", "containers", "records")));
                Assert.False(Directory.Exists($"/sys/fs/cgroup/memory/berth/{ids[0]}"));
            }
            finally
            {
                if (second is not null) await second.DisposeAsync();
                await first.DisposeAsync();
            }
        }
        finally
        {
            // A failure above may leave containers with no daemon: a fresh one takes them in and removes them.
            if (Shims(directory).Length > 0)
            {
                await using var cleaner = await BerthDaemon.StartAsync(options);
                await cleaner.RemoveEverythingAsync();
            }
            foreach (var mount in Host.MountsUnder(directory).Reverse()) Host.Run("umount", "-l", mount);
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task An_interrupted_CreateContainer_is_undone_at_the_next_start()
    {
        var directory = Directory.CreateTempSubdirectory("be-").FullName;
        // A shim whose `run` never reports: CreateContainer hangs after the rootfs is mounted, until berthd is killed.
        // Its other verbs fail at once, as an unknown verb does (berthd's user namespace probe at startup is one).
        var hangingShim = Path.Combine(directory, "hanging-shim");
        var hangingPid = Path.Combine(directory, "hanging.pid");
        await File.WriteAllTextAsync(hangingShim, $"#!/bin/sh\n[ \"$1\" = run ] || exit 2\nsleep 300 &\necho $! > {hangingPid}\nwait\n");
        File.SetUnixFileMode(hangingShim, (UnixFileMode)0x1ED);
        try
        {
            string podId;
            await using (var first = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory, ShimBinary = hangingShim }))
            {
                await first.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Image } });
                var pod = bed.Pod("interrupted", hostNetwork: true);
                podId = (await first.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
                var create = first.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = bed.Container("c", "true"), SandboxConfig = pod }).ResponseAsync;
                // The shim is spawned after the rootfs is mounted, so its pid file means both are there.
                for (var i = 0; i < 400 && !File.Exists(hangingPid); i++) await Task.Delay(50);
                for (var i = 0; i < 40 && (await File.ReadAllTextAsync(hangingPid)).Trim().Length == 0; i++) await Task.Delay(50);
                Assert.NotEmpty(Host.MountsUnder(Path.Combine(directory, "state", "c")));
                first.Signal(Tmds.Linux.LibC.SIGKILL);
                await first.WaitForExitAsync(TimeSpan.FromSeconds(20));
                await Assert.ThrowsAnyAsync<Exception>(() => create);
            }
            Host.Run("kill", "-9", (await File.ReadAllTextAsync(hangingPid)).Trim());

            await using var second = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
            Assert.Empty((await second.Runtime.ListContainersAsync(new ListContainersRequest())).Containers);
            Assert.Empty(Host.MountsUnder(Path.Combine(directory, "state", "c")));
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(directory, "state", "c")));
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(directory, "root", "containers", "records")));
            await second.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await second.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        }
        finally
        {
            foreach (var mount in Host.MountsUnder(directory).Reverse()) Host.Run("umount", "-l", mount);
            Directory.Delete(directory, recursive: true);
        }
    }
}
