using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>Containers through the CRI socket: real runc, overlay rootfs, cgroups and the pod's namespaces.</summary>
public sealed partial class ContainerTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z (stdout|stderr) (F|P) ")]
    private static partial Regex CriLogPrefix();

    [Fact]
    public async Task A_container_runs_logs_in_the_CRI_format_and_reports_its_exit_code()
    {
        var pod = bed.Pod("logs");
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var config = bed.Container("exit3", "sh", "-c", "echo out-line; echo err-line >&2; printf no-newline; exit 3");
            var id = await bed.RunAsync(podId, pod, config);
            var status = await bed.WaitExitedAsync(id);
            Assert.Equal(3, status.ExitCode);
            Assert.Equal("Error", status.Reason);
            Assert.True(status.StartedAt > 0 && status.FinishedAt >= status.StartedAt && status.CreatedAt <= status.StartedAt);
            Assert.Equal(Path.Combine(bed.LogDirectory("logs"), "exit3.log"), status.LogPath);

            var lines = (await File.ReadAllTextAsync(status.LogPath)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.All(lines, l => Assert.Matches(CriLogPrefix(), l));
            var entries = lines.Select(l => string.Join(' ', l.Split(' ').Skip(1))).ToList();
            Assert.Contains("stdout F out-line", entries);
            Assert.Contains("stderr F err-line", entries);
            Assert.Contains("stdout F no-newline", entries); // a partial last line is logged as full at the end

            var listed = (await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = podId } })).Containers;
            Assert.Equal(ContainerState.ContainerExited, Assert.Single(listed).State);

            var completed = await bed.RunAsync(podId, pod, bed.Container("exit0", "true"));
            Assert.Equal("Completed", (await bed.WaitExitedAsync(completed)).Reason);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task The_rootfs_overlay_names_its_layers_by_descriptors_so_the_mount_table_stays_small()
    {
        var pod = bed.Pod("overlay", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var id = await bed.RunAsync(podId, pod, bed.Container("app", "sleep", "600"));
            var rootfs = Path.Combine(bed.Daemon.StatePath, "c", id, "rootfs");
            var line = Assert.Single(File.ReadLines("/proc/self/mountinfo"), l => l.Split(' ')[4] == rootfs);
            // The mount point and these options alone: about 220 bytes where the layers' full paths made about 600.
            Assert.Matches(@" - overlay overlay rw,lowerdir=/proc/self/fd/\d+:/proc/self/fd/\d+,upperdir=/proc/self/fd/\d+,workdir=/proc/self/fd/\d+", line);
            Assert.True(line.Length < 300, $"{line.Length} bytes: {line}");
            // crictl inspect names the directories that the mount table does not.
            var info = (await bed.Daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = true })).Info["info"];
            using (var json = System.Text.Json.JsonDocument.Parse(info))
            {
                var layers = json.RootElement.GetProperty("rootfs");
                Assert.Equal(2, layers.GetProperty("lowerDirs").GetArrayLength());
                Assert.All(layers.GetProperty("lowerDirs").EnumerateArray(), l => Assert.StartsWith(Path.Combine(bed.Daemon.RootPath, "snapshots"), l.GetString(), StringComparison.Ordinal));
                Assert.Equal(Path.Combine(bed.Daemon.RootPath, "containers", id, "upper"), layers.GetProperty("upperDir").GetString());
            }
            // The layers are there, and what the container writes lands in its upper dir.
            var written = await bed.Daemon.Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = id, Timeout = 10, Cmd = { "sh", "-c", "ls /bin/busybox && echo hi > /written" } });
            Assert.Equal(0, written.ExitCode);
            Assert.Equal("hi\n", File.ReadAllText(Path.Combine(bed.Daemon.RootPath, "containers", id, "upper", "written")));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Command_args_env_and_working_dir_merge_with_the_image_config()
    {
        var pod = bed.Pod("merge", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            // The image's entrypoint with the request's args; env from the image, then the request's.
            var withArgs = bed.Container("args");
            withArgs.Image.Image = bed.ConfiguredImage;
            withArgs.Args.AddRange(["arg1", "arg2"]);
            var id = await bed.RunAsync(podId, pod, withArgs);
            await bed.WaitExitedAsync(id);
            var log = await File.ReadAllTextAsync((await bed.StatusAsync(id)).LogPath);
            Assert.Contains("stdout F entry arg1 arg2", log, StringComparison.Ordinal);

            var env = bed.Container("env", "/bin/sh", "-c",
                "echo \"$FROM_IMAGE $OVERRIDDEN $FROM_CRI $(pwd)\"; ls -d /vol; stat -c 'vol %u:%g %a' /vol /vol/seed.txt; cat /vol/sub/link; grep ' /vol ' /proc/self/mountinfo | wc -l");
            env.Image.Image = bed.ConfiguredImage;
            env.Envs.Add(new KeyValue { Key = "OVERRIDDEN", Value = Google.Protobuf.ByteString.CopyFromUtf8("cri") });
            env.Envs.Add(new KeyValue { Key = "FROM_CRI", Value = Google.Protobuf.ByteString.CopyFromUtf8("yes") });
            var envId = await bed.RunAsync(podId, pod, env);
            Assert.Equal(0, (await bed.WaitExitedAsync(envId)).ExitCode);
            var envLog = await File.ReadAllTextAsync((await bed.StatusAsync(envId)).LogPath);
            Assert.Contains("stdout F image cri yes /home/berth", envLog, StringComparison.Ordinal);
            Assert.Contains("stdout F /vol", envLog, StringComparison.Ordinal);
            // The image volume is a mount of its own that starts with the image's content, owners, modes and links.
            Assert.Contains("stdout F vol 1000:1000 750", envLog, StringComparison.Ordinal);
            Assert.Contains("stdout F vol 1000:1000 640", envLog, StringComparison.Ordinal);
            Assert.Contains("stdout F seeded", envLog, StringComparison.Ordinal);
            Assert.Contains("stdout F 1\n", envLog, StringComparison.Ordinal);
            // Extended attributes come along too (busybox has no getfattr, so the volume is read from the host).
            var volumeSeed = Directory.EnumerateFiles(bed.Daemon.Directory, "seed.txt", SearchOption.AllDirectories)
                .Single(path => path.Contains(envId, StringComparison.Ordinal) && path.Contains("/volumes/", StringComparison.Ordinal));
            Assert.Equal("volume-xattr"u8.ToArray(), FileStat.Xattr(volumeSeed, "user.berth"));

            var workdir = bed.Container("workdir", "pwd");
            workdir.WorkingDir = "/tmp";
            var workdirId = await bed.RunAsync(podId, pod, workdir);
            await bed.WaitExitedAsync(workdirId);
            Assert.Contains("stdout F /tmp", await File.ReadAllTextAsync((await bed.StatusAsync(workdirId)).LogPath), StringComparison.Ordinal);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Users_by_uid_and_by_name_and_a_readonly_rootfs()
    {
        var pod = bed.Pod("users", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var byUid = bed.Container("uid", "sleep", "60");
            byUid.Linux.SecurityContext.RunAsUser = new Int64Value { Value = 1000 };
            var uidId = await bed.RunAsync(podId, pod, byUid);
            Assert.Equal("uid=1000(berth) gid=1000(berth) groups=1000(berth)", (await bed.ExecAsync(uidId, "id")).Stdout.Trim());

            var byName = bed.Container("name", "sleep", "60");
            byName.Linux.SecurityContext.RunAsUsername = "nobody";
            byName.Linux.SecurityContext.SupplementalGroups.Add(1000);
            var nameId = await bed.RunAsync(podId, pod, byName);
            Assert.Equal("uid=65534(nobody) gid=65534(nogroup) groups=1000(berth),65534(nogroup)", (await bed.ExecAsync(nameId, "id")).Stdout.Trim());

            var readOnly = bed.Container("ro", "sleep", "60");
            readOnly.Linux.SecurityContext.ReadonlyRootfs = true;
            var roId = await bed.RunAsync(podId, pod, readOnly);
            var write = await bed.ExecAsync(roId, "touch", "/new-file");
            Assert.NotEqual(0, write.ExitCode);
            Assert.Contains("Read-only file system", write.Stderr, StringComparison.Ordinal);
            Assert.Equal(0, (await bed.ExecAsync(roId, "touch", "/dev/shm/ok")).ExitCode); // the pod's /dev/shm stays writable
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_host_path_mount_with_host_to_container_propagation_sees_later_mounts()
    {
        var pod = bed.Pod("mounts", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        var source = Directory.CreateTempSubdirectory("berth-mnt-").FullName;
        var inner = Path.Combine(source, "inner");
        Directory.CreateDirectory(inner);
        await File.WriteAllTextAsync(Path.Combine(source, "file"), "from the host\n");
        try
        {
            // rslave needs a shared source: make the directory a shared mount point of its own.
            Host.Run("mount", "--bind", source, source);
            Host.Run("mount", "--make-shared", source);
            var config = bed.Container("mnt", "sleep", "60");
            config.Mounts.Add(new Mount { ContainerPath = "/host", HostPath = source, Propagation = MountPropagation.PropagationHostToContainer });
            config.Mounts.Add(new Mount { ContainerPath = "/host-ro", HostPath = source, Readonly = true });
            var id = await bed.RunAsync(podId, pod, config);
            Assert.Equal("from the host", (await bed.ExecAsync(id, "cat", "/host/file")).Stdout.Trim());
            Assert.NotEqual(0, (await bed.ExecAsync(id, "touch", "/host-ro/x")).ExitCode);

            Host.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", inner);
            await File.WriteAllTextAsync(Path.Combine(inner, "later"), "mounted after start\n");
            Assert.Equal("mounted after start", (await bed.ExecAsync(id, "cat", "/host/inner/later")).Stdout.Trim());

            var status = await bed.StatusAsync(id);
            Assert.Contains(status.Mounts, m => m.ContainerPath == "/host" && m.Propagation == MountPropagation.PropagationHostToContainer);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            Host.Run("umount", inner);
            Host.Run("umount", source);
            Directory.Delete(source, recursive: true);
        }
    }

    [Fact]
    public async Task A_recursive_read_only_mount_makes_the_host_paths_submounts_read_only_too()
    {
        var handlers = (await bed.Daemon.Runtime.StatusAsync(new StatusRequest())).RuntimeHandlers;
        Assert.True(handlers.Single(h => h.Name.Length == 0).Features.RecursiveReadOnlyMounts); // runc 1.1 on Linux 5.12+

        var pod = bed.Pod("rro", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        var source = Directory.CreateTempSubdirectory("berth-rro-").FullName;
        var inner = Path.Combine(source, "inner");
        Directory.CreateDirectory(inner);
        Host.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", inner);
        try
        {
            var config = bed.Container("rro", "sleep", "60");
            config.Mounts.Add(new Mount { ContainerPath = "/ro", HostPath = source, Readonly = true });
            config.Mounts.Add(new Mount { ContainerPath = "/rro", HostPath = source, Readonly = true, RecursiveReadOnly = true });
            var id = await bed.RunAsync(podId, pod, config);

            // Plain "ro" covers the bind's top only; "rro" reaches the tmpfs below it as well.
            Assert.NotEqual(0, (await bed.ExecAsync(id, "touch", "/ro/top")).ExitCode);
            Assert.Equal(0, (await bed.ExecAsync(id, "touch", "/ro/inner/from-ro")).ExitCode);
            var nested = await bed.ExecAsync(id, "touch", "/rro/inner/from-rro");
            Assert.NotEqual(0, nested.ExitCode);
            Assert.Contains("Read-only file system", nested.Stderr, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(inner, "from-ro")));
            Assert.False(File.Exists(Path.Combine(inner, "from-rro")));

            var status = await bed.StatusAsync(id);
            Assert.Contains(status.Mounts, m => m.ContainerPath == "/rro" && m.RecursiveReadOnly);
            Assert.Contains(status.Mounts, m => m.ContainerPath == "/ro" && !m.RecursiveReadOnly);

            async Task Refused(Mount mount, string fragment)
            {
                var bad = bed.Container("bad-rro", "true");
                bad.Mounts.Add(mount);
                var error = await Assert.ThrowsAsync<RpcException>(() => bed.CreateAsync(podId, pod, bad));
                Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
                Assert.Contains(fragment, error.Status.Detail, StringComparison.Ordinal);
            }
            await Refused(new Mount { ContainerPath = "/x", HostPath = source, RecursiveReadOnly = true }, "mounts[0].recursive_read_only: needs mounts[0].readonly");
            await Refused(new Mount { ContainerPath = "/x", HostPath = source, Readonly = true, RecursiveReadOnly = true, Propagation = MountPropagation.PropagationHostToContainer },
                "PROPAGATION_HOST_TO_CONTAINER");
            await Refused(new Mount { ContainerPath = "/x", HostPath = source, Readonly = true, RecursiveReadOnly = true, Propagation = MountPropagation.PropagationBidirectional },
                "PROPAGATION_BIDIRECTIONAL");
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            Host.Run("umount", inner);
            Directory.Delete(source, recursive: true);
        }
    }

    [Fact]
    public async Task AppArmor_localhost_profiles_must_be_loaded_and_the_other_kinds_run_as_asked()
    {
        var pod = bed.Pod("apparmor", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        var enabled = File.Exists("/sys/module/apparmor/parameters/enabled")
                      && (await File.ReadAllTextAsync("/sys/module/apparmor/parameters/enabled")).StartsWith('Y');
        try
        {
            ContainerConfig With(Action<LinuxContainerSecurityContext> set, string name)
            {
                var config = bed.Container(name, "sleep", "60");
                set(config.Linux.SecurityContext);
                return config;
            }
            async Task Refused(StatusCode code, string fragment, ContainerConfig config)
            {
                var error = await Assert.ThrowsAsync<RpcException>(() => bed.CreateAsync(podId, pod, config));
                Assert.Equal(code, error.StatusCode);
                Assert.Contains(fragment, error.Status.Detail, StringComparison.Ordinal);
            }

            // A profile asked for by name never runs the container unconfined in silence.
            var missing = enabled ? "is not loaded" : "asked for, but AppArmor is not enabled on this node";
            await Refused(StatusCode.FailedPrecondition, $"linux.security_context.apparmor.localhost_ref: AppArmor profile 'berth-test-none' {missing}",
                With(s => s.Apparmor = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Localhost, LocalhostRef = "localhost/berth-test-none" }, "a"));
#pragma warning disable CS0612 // the deprecated field, as older kubelets send it
            await Refused(StatusCode.FailedPrecondition, "linux.security_context.apparmor_profile: AppArmor profile 'berth-test-none'",
                With(s => s.ApparmorProfile = "localhost/berth-test-none", "b"));
            await Refused(StatusCode.InvalidArgument, "linux.security_context.apparmor_profile: 'docker/default' is none of",
                With(s => s.ApparmorProfile = "docker/default", "c"));
            await bed.RunAsync(podId, pod, With(s => s.ApparmorProfile = "runtime/default", "legacy-default"));
#pragma warning restore CS0612
            await bed.RunAsync(podId, pod, With(s => s.Apparmor = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault }, "default"));
            await bed.RunAsync(podId, pod, With(s => s.Apparmor = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined }, "unconfined"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    private static ulong Caps(string status, string field = "CapEff") =>
        ulong.Parse(status.Split('\n').Single(l => l.StartsWith(field + ":", StringComparison.Ordinal))[(field.Length + 1)..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    [Fact]
    public async Task Privileged_containers_get_every_capability_and_default_ones_a_small_set()
    {
        var pod = bed.Pod("caps", hostNetwork: true, privileged: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var plain = await bed.RunAsync(podId, pod, bed.Container("plain", "sleep", "60"));
            var privilegedConfig = bed.Container("privileged", "sleep", "60");
            privilegedConfig.Linux.SecurityContext.Privileged = true;
            var privileged = await bed.RunAsync(podId, pod, privilegedConfig);
            var added = bed.Container("added", "sleep", "60");
            added.Linux.SecurityContext.Capabilities = new Capability();
            added.Linux.SecurityContext.Capabilities.AddCapabilities.Add("NET_ADMIN");
            added.Linux.SecurityContext.Capabilities.DropCapabilities.Add("CHOWN");
            var addedId = await bed.RunAsync(podId, pod, added);

            var host = Caps(await File.ReadAllTextAsync("/proc/self/status"), "CapBnd");
            var plainCaps = Caps((await bed.ExecAsync(plain, "cat", "/proc/self/status")).Stdout);
            var privilegedCaps = Caps((await bed.ExecAsync(privileged, "cat", "/proc/self/status")).Stdout);
            var addedCaps = Caps((await bed.ExecAsync(addedId, "cat", "/proc/self/status")).Stdout);
            Assert.Equal(host, privilegedCaps);
            Assert.Equal(0xa80425fbUL, plainCaps); // containerd's default set
            Assert.Equal((plainCaps | (1UL << 12)) & ~1UL, addedCaps); // + CAP_NET_ADMIN (12), - CAP_CHOWN (0)
            Assert.NotEqual(0, (await bed.ExecAsync(plain, "ip", "link", "add", "dummy0", "type", "dummy")).ExitCode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    private async Task<string> CgroupPathAsync(string id)
    {
        var verbose = await bed.Daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = true });
        using var info = JsonDocument.Parse(verbose.Info["info"]);
        return info.RootElement.GetProperty("runtimeSpec").GetProperty("linux").GetProperty("cgroupsPath").GetString()!;
    }

    [Fact]
    public async Task A_memory_limit_is_in_the_cgroup_an_update_changes_it_and_OOM_is_reported()
    {
        var pod = bed.Pod("memory", hostNetwork: true);
        pod.Linux.CgroupParent = $"/berth-test-{Guid.NewGuid():N}";
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var config = bed.Container("limited", "sleep", "60");
            config.Linux.Resources.MemoryLimitInBytes = 64 * 1024 * 1024;
            config.Linux.Resources.CpuShares = 512;
            var id = await bed.RunAsync(podId, pod, config);
            var cgroup = await CgroupPathAsync(id);
            Assert.StartsWith(pod.Linux.CgroupParent + "/", cgroup, StringComparison.Ordinal);
            Assert.Equal("67108864", (await File.ReadAllTextAsync($"/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes")).Trim());
            Assert.Equal("67108864", (await bed.ExecAsync(id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")).Stdout.Trim());

            await bed.Daemon.Runtime.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
            {
                ContainerId = id,
                Linux = new LinuxContainerResources { MemoryLimitInBytes = 128 * 1024 * 1024, CpuShares = 256 },
            });
            Assert.Equal("134217728", (await File.ReadAllTextAsync($"/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes")).Trim());
            Assert.Equal("256", (await File.ReadAllTextAsync($"/sys/fs/cgroup/cpu{cgroup}/cpu.shares")).Trim());
            var updated = await bed.StatusAsync(id);
            Assert.Equal(128 * 1024 * 1024, updated.Resources.Linux.MemoryLimitInBytes);

            var hog = bed.Container("hog", "sh", "-c", "exec dd if=/dev/zero of=/dev/null bs=200M count=1");
            hog.Linux.Resources.MemoryLimitInBytes = 32 * 1024 * 1024;
            var hogId = await bed.RunAsync(podId, pod, hog);
            var oom = await bed.WaitExitedAsync(hogId);
            Assert.Equal("OOMKilled", oom.Reason);
            Assert.Equal(137, oom.ExitCode);

            await bed.RemovePodAsync(podId);
            Assert.False(Directory.Exists($"/sys/fs/cgroup/memory{cgroup}"), "the container's cgroup is left");
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            foreach (var controller in Directory.EnumerateDirectories("/sys/fs/cgroup"))
            {
                if (Directory.Exists(controller + pod.Linux.CgroupParent)) Directory.Delete(controller + pod.Linux.CgroupParent);
            }
        }
    }

    [Fact]
    public async Task Two_containers_of_a_pod_talk_over_localhost()
    {
        var pod = bed.Pod("localhost");
        var podId = await bed.RunPodAsync(pod);
        try
        {
            // busybox nc half-closes when its stdin ends; on /dev/null the server could do so before the client had
            // read its own stdin, and the client would then leave without sending. An open stdin keeps it listening.
            var serverConfig = bed.Container("server", "nc", "-l", "-p", "8080");
            serverConfig.Stdin = true;
            var server = await bed.RunAsync(podId, pod, serverConfig);
            var serverLog = (await bed.StatusAsync(server)).LogPath;
            for (var attempt = 0; ; attempt++)
            {
                var client = await bed.RunAsync(podId, pod, bed.Container($"client{attempt}", "sh", "-c", "echo hello-over-localhost | nc 127.0.0.1 8080"));
                if ((await bed.WaitExitedAsync(client)).ExitCode == 0) break;
                Assert.True(attempt < 20, "the client never connected");
                await Task.Delay(100);
            }
            await ContainerTestBed.WaitForLogAsync(serverLog, "stdout F hello-over-localhost");
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_TTY_container_logs_its_terminal_output()
    {
        var pod = bed.Pod("tty", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var config = bed.Container("tty", "sh", "-c", "echo on-a-terminal; ls -l /proc/self/fd/1");
            config.Tty = true;
            var id = await bed.RunAsync(podId, pod, config);
            Assert.Equal(0, (await bed.WaitExitedAsync(id)).ExitCode);
            var log = await ContainerTestBed.WaitForLogAsync((await bed.StatusAsync(id)).LogPath, "/dev/pts/");
            Assert.Contains("stdout F on-a-terminal", log, StringComparison.Ordinal);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task ExecSync_returns_output_and_exit_code_and_its_timeout_kills_the_command()
    {
        var pod = bed.Pod("exec", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var id = await bed.RunAsync(podId, pod, bed.Container("exec", "sleep", "600"));
            var result = await bed.ExecAsync(id, "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7");
            Assert.Equal((7, "to-stdout\n", "to-stderr\n"), result);

            var request = new ExecSyncRequest { ContainerId = id, Timeout = 1 };
            request.Cmd.AddRange(["sleep", "4242"]);
            var watch = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<RpcException>(async () => await bed.Daemon.Runtime.ExecSyncAsync(request));
            Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
            Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8));
            Assert.Equal(1, Host.Run("pgrep", "-f", "sleep 4242").ExitCode); // nothing left behind
            Assert.DoesNotContain("4242", (await bed.ExecAsync(id, "ps")).Stdout, StringComparison.Ordinal);

            await bed.Daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 0 });
            var stopped = await Assert.ThrowsAsync<RpcException>(() => bed.ExecAsync(id, "true"));
            Assert.Equal(StatusCode.FailedPrecondition, stopped.StatusCode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Stop_sends_SIGTERM_then_SIGKILL_after_the_timeout_and_is_idempotent()
    {
        var pod = bed.Pod("stop", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            // sh as PID 1 with a TERM handler exits 0 on SIGTERM; one that ignores TERM needs SIGKILL.
            var polite = await bed.RunAsync(podId, pod, bed.Container("polite", "sh", "-c", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"));
            await ContainerTestBed.WaitForLogAsync((await bed.StatusAsync(polite)).LogPath, "ready");
            await bed.Daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = polite, Timeout = 10 });
            Assert.Equal(0, (await bed.StatusAsync(polite)).ExitCode);

            var stubborn = await bed.RunAsync(podId, pod, bed.Container("stubborn", "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"));
            await ContainerTestBed.WaitForLogAsync((await bed.StatusAsync(stubborn)).LogPath, "ready");
            var watch = Stopwatch.StartNew();
            await bed.Daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = stubborn, Timeout = 2 });
            Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10));
            var status = await bed.StatusAsync(stubborn);
            Assert.Equal(ContainerState.ContainerExited, status.State);
            Assert.Equal(137, status.ExitCode);

            await bed.Daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = stubborn, Timeout = 2 });
            await bed.Daemon.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = stubborn });
            await bed.Daemon.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = stubborn });
            var gone = await Assert.ThrowsAsync<RpcException>(() => bed.StatusAsync(stubborn));
            Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_stop_right_after_start_reaches_an_init_that_installs_its_handler_late()
    {
        // PID 1 of its PID namespace with no TERM handler for its first 200 ms: the kernel drops a SIGTERM sent then.
        var pod = bed.Pod("late-trap");
        var podId = await bed.RunPodAsync(pod);
        try
        {
            for (var round = 0; round < 3; round++)
            {
                var id = await bed.RunAsync(podId, pod, bed.Container($"late-trap-{round}", "sh", "-c", "sleep 0.2; trap 'exit 42' TERM; while true; do sleep 0.05; done"));
                var watch = Stopwatch.StartNew();
                await bed.Daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 30 });
                Assert.InRange(watch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(5));
                var status = await bed.StatusAsync(id);
                Assert.Equal((ContainerState.ContainerExited, 42), (status.State, status.ExitCode));
            }
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task ReopenContainerLog_moves_output_to_a_new_file()
    {
        var pod = bed.Pod("reopen", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var id = await bed.RunAsync(podId, pod, bed.Container("ticker", "sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.1; done"));
            var log = (await bed.StatusAsync(id)).LogPath;
            await ContainerTestBed.WaitForLogAsync(log, "tick-3");
            File.Move(log, log + ".1");
            await bed.Daemon.Runtime.ReopenContainerLogAsync(new ReopenContainerLogRequest { ContainerId = id });
            await ContainerTestBed.WaitForLogAsync(log, "tick-");
            Assert.Matches(CriLogPrefix(), (await File.ReadAllLinesAsync(log))[0]);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Container_RPCs_take_a_unique_ID_prefix_as_crictl_passes_it_and_so_do_pod_IDs()
    {
        var pod = bed.Pod("prefix", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var id = await bed.RunAsync(podId, pod, bed.Container("prefix", "sleep", "3600"));
            // `crictl create <pod prefix>` and `crictl port-forward <pod prefix>` pass the pod's prefix as typed.
            var other = await bed.RunAsync(podId[..13], pod, bed.Container("other", "sleep", "3600"));
            var listed = (await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { Id = other } })).Containers;
            Assert.Equal(podId, Assert.Single(listed).PodSandboxId);
            var forward = await bed.Daemon.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = podId[..13], Port = { 80 } });
            Assert.StartsWith("http://", forward.Url, StringComparison.Ordinal);
            var shortId = id[..13];
            Assert.Equal(id, (await bed.Daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = shortId })).Status.Id);
            Assert.Equal(id, Assert.Single((await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { Id = shortId } })).Containers).Id);
            var exec = new ExecSyncRequest { ContainerId = shortId, Timeout = 10 };
            exec.Cmd.AddRange(["echo", "by-prefix"]);
            Assert.Equal("by-prefix\n", (await bed.Daemon.Runtime.ExecSyncAsync(exec)).Stdout.ToStringUtf8());
            await bed.Daemon.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = shortId, Timeout = 0 });
            await bed.Daemon.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = shortId });
            Assert.Null(bed.Daemon.Runtime.ListContainers(new ListContainersRequest()).Containers.FirstOrDefault(c => c.Id == id));
            Assert.Equal(ContainerState.ContainerRunning, (await bed.StatusAsync(other)).State);

            // A prefix of no container names none (an ambiguous one neither: unit-tested on the store).
            Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() =>
                bed.Daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = "zz" }).ResponseAsync)).StatusCode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Bad_requests_get_precise_statuses_and_leave_nothing_behind()
    {
        var pod = bed.Pod("bad", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            async Task Expect(StatusCode code, string fragment, string pod2, ContainerConfig config)
            {
                var error = await Assert.ThrowsAsync<RpcException>(() => bed.CreateAsync(pod2, pod, config));
                Assert.Equal(code, error.StatusCode);
                Assert.Contains(fragment, error.Status.Detail, StringComparison.Ordinal);
            }

            await Expect(StatusCode.NotFound, "pod_sandbox_id", "0000unknown", bed.Container("c", "true"));
            var missing = bed.Container("c", "true");
            missing.Image.Image = "127.0.0.1:1/not/there:1";
            await Expect(StatusCode.NotFound, "config.image.image", podId, missing);
            var badMount = bed.Container("c", "true");
            badMount.Mounts.Add(new Mount { ContainerPath = "relative/path", HostPath = "/tmp" });
            await Expect(StatusCode.InvalidArgument, "mounts[0].container_path", podId, badMount);
            var badResource = bed.Container("c", "true");
            badResource.Linux.Resources.CpuShares = -5;
            await Expect(StatusCode.InvalidArgument, "linux.resources.cpu_shares", podId, badResource);
            var privileged = bed.Container("c", "true");
            privileged.Linux.SecurityContext.Privileged = true;
            await Expect(StatusCode.InvalidArgument, "privileged", podId, privileged);

            // Rejected late (in the spec builder, after the rootfs was mounted): nothing of it stays.
            Assert.DoesNotContain((await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers, c => c.PodSandboxId == podId);
            Assert.Empty(Host.MountsUnder(Path.Combine(bed.Daemon.StatePath, "c")));

            await bed.CreateAsync(podId, pod, bed.Container("dup", "true"));
            await Expect(StatusCode.AlreadyExists, "dup", podId, bed.Container("dup", "true"));

            var unknown = await Assert.ThrowsAsync<RpcException>(async () =>
                await bed.Daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = "feedbeef" }));
            Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(bed.Daemon.StatePath, "c")));
        Assert.Empty(Host.MountsUnder(Path.Combine(bed.Daemon.StatePath, "c")));
    }
}
