using Berth.Runtime.Spec;

namespace Berth.Runtime.Tests;

/// <summary>One golden config.json per feature of the spec builder; each scenario changes one thing from the base.</summary>
public sealed class OciSpecBuilderGoldenTests
{
    private const string Id = "c0ffee";

    private static readonly UserDatabase Users = UserDatabase.Parse(
        """
        root:x:0:0:root:/root:/bin/sh
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        www:x:1000:1000:web server:/srv:/bin/sh
        """,
        """
        root:x:0:
        daemon:x:1:
        www:x:1000:
        audio:x:29:www
        video:x:44:www,daemon
        """);

    private static readonly PodSettings Pod = new()
    {
        Id = "feedface",
        Name = "web",
        Namespace = "default",
        Uid = "7b6b1a4e-0000-4000-8000-000000000001",
        Hostname = "web",
        CgroupParent = "/kubepods/besteffort/pod7b6b1a4e",
        NamespacePaths = new Dictionary<string, string>
        {
            ["network"] = "/run/berth/sandboxes/feedface/ns/net",
            ["ipc"] = "/run/berth/sandboxes/feedface/ns/ipc",
            ["uts"] = "/run/berth/sandboxes/feedface/ns/uts",
        },
        HostnameFile = "/run/berth/sandboxes/feedface/hostname",
        HostsFile = "/run/berth/sandboxes/feedface/hosts",
        ResolvConfFile = "/run/berth/sandboxes/feedface/resolv.conf",
        ShmPath = "/run/berth/sandboxes/feedface/shm",
    };

    private static readonly ImageSettings Image = new()
    {
        ImageRef = "sha256:1111111111111111111111111111111111111111111111111111111111111111",
        ImageName = "docker.io/library/busybox:latest",
        Entrypoint = ["/bin/sh", "-c"],
        Cmd = ["echo hello"],
        Env = ["PATH=/bin:/usr/bin", "LANG=C.UTF-8"],
        WorkingDir = "/srv",
    };

    private static readonly NodeSettings Node = new();

    private static ContainerRequest Base => new() { Name = "app" };

    private static OciSpec Build(ContainerRequest? request = null, PodSettings? pod = null, ImageSettings? image = null, NodeSettings? node = null) =>
        OciSpecBuilder.Build(Id, request ?? Base, pod ?? Pod, image ?? Image, node ?? Node, Users);

    [Fact]
    public void Defaults() => Golden.Match("defaults", Build());

    [Fact]
    public void Command_args_env_and_working_dir() => Golden.Match("command-env-cwd", Build(Base with
    {
        Command = ["/bin/server"],
        Args = ["--port", "8080"],
        WorkingDir = "/app",
        Env = [new("LANG", "en_US.UTF-8"), new("MODE", "production")],
        Tty = true,
    }));

    [Fact]
    public void User_by_name_with_merged_and_requested_groups() => Golden.Match("user-by-name", Build(Base with
    {
        Security = new ContainerSecurity { RunAsUsername = "www", SupplementalGroups = [5000] },
    }));

    [Fact]
    public void User_by_uid_and_group_with_the_strict_policy() => Golden.Match("user-by-uid-strict", Build(Base with
    {
        Security = new ContainerSecurity
        {
            RunAsUser = 1000, RunAsGroup = 2000, SupplementalGroups = [3000], SupplementalGroupsPolicy = SupplementalGroupsPolicy.Strict,
        },
    }));

    [Fact]
    public void Host_path_mounts_with_propagation_and_image_volumes() => Golden.Match("mounts", Build(Base with
    {
        Mounts =
        [
            new ContainerMount { ContainerPath = "/data/cache", HostPath = "/var/lib/app/cache", Propagation = MountPropagation.HostToContainer },
            new ContainerMount { ContainerPath = "/data", HostPath = "/var/lib/app", Readonly = true },
            new ContainerMount { ContainerPath = "/mnt/shared", HostPath = "/mnt/shared", Propagation = MountPropagation.Bidirectional },
            new ContainerMount { ContainerPath = "/etc/hosts", HostPath = "/var/lib/kubelet/pods/x/etc-hosts" },
        ],
    }, image: Image with { Volumes = new Dictionary<string, string> { ["/var/log/app"] = "/var/lib/berth/volumes/c0ffee/1" } }));

    [Fact]
    public void Devices() => Golden.Match("devices", Build(Base with
    {
        Devices = [new ContainerDevice { ContainerPath = "/dev/fuse", HostPath = "/dev/fuse", Type = 'c', Major = 10, Minor = 229, Permissions = "rw" }],
    }));

    [Fact]
    public void CDI_devices_add_nodes_cgroup_rules_env_mounts_hooks_and_groups() => Golden.Match("cdi", Build(Base with
    {
        Env = [new("SHARED", "request")],
        Devices = [new ContainerDevice { ContainerPath = "/dev/card0", HostPath = "/dev/fuse", Type = 'c', Major = 10, Minor = 229, Permissions = "rw" }],
        Mounts = [new ContainerMount { ContainerPath = "/data", HostPath = "/srv/data" }],
        Security = new ContainerSecurity { RunAsUser = 1000 },
        CdiDevices = ["vendor.com/gpu=0"],
        Cdi = new Runtime.Cdi.CdiInjection
        {
            Devices = ["vendor.com/gpu=0"],
            Env = ["SHARED=cdi", "GPU=0"],
            DeviceNodes =
            [
                // Replaces the CRI device at the same path; owned by the container's user, as it names no owner.
                new Runtime.Cdi.CdiDeviceNode { Path = "/dev/card0", HostPath = "/dev/dri/card0", Type = "c", Major = 226, Minor = 0, FileMode = 0x1B0, CgroupAccess = "rw" },
                new Runtime.Cdi.CdiDeviceNode { Path = "/dev/fifo", HostPath = "/run/fifo", Type = "p", Uid = 0, Gid = 0 },
            ],
            Mounts =
            [
                new Runtime.Cdi.CdiMountDocument { HostPath = "/usr/lib/libgpu.so.1", ContainerPath = "/usr/lib/libgpu.so.1", Options = ["ro", "nosuid", "nodev", "bind"] },
                new Runtime.Cdi.CdiMountDocument { HostPath = "/srv/gpu-data", ContainerPath = "/data" },
            ],
            Hooks =
            [
                new Runtime.Cdi.CdiHookDocument { HookName = "createContainer", Path = "/usr/bin/gpu-hook", Args = ["gpu-hook", "update-ldcache"], Timeout = 5 },
                new Runtime.Cdi.CdiHookDocument { HookName = "poststop", Path = "/usr/bin/gpu-hook", Env = ["MODE=cleanup"] },
            ],
            AdditionalGids = [44],
            IntelRdt = new Runtime.Cdi.CdiIntelRdtDocument { ClosId = "gpu", L3CacheSchema = "L3:0=f" },
        },
    }));

    [Fact]
    public void Privileged() => Golden.Match("privileged", Build(
        Base with { Security = new ContainerSecurity { Privileged = true, Seccomp = SeccompMode.RuntimeDefault, NoNewPrivileges = true } },
        pod: Pod with { Privileged = true },
        node: Node with { HostDevices = [new ContainerDevice { ContainerPath = "/dev/kvm", HostPath = "/dev/kvm", Type = 'c', Major = 10, Minor = 232 }] }));

    [Fact]
    public void Capabilities_added_and_dropped() => Golden.Match("capabilities", Build(Base with
    {
        Security = new ContainerSecurity { AddCapabilities = ["NET_ADMIN", "cap_sys_time"], DropCapabilities = ["MKNOD", "CAP_NET_RAW"] },
    }));

    [Fact]
    public void Runtime_default_seccomp_allows_what_added_capabilities_need() => Golden.Match("seccomp-runtime-default", Build(Base with
    {
        Security = new ContainerSecurity { Seccomp = SeccompMode.RuntimeDefault, AddCapabilities = ["SYS_PTRACE"], NoNewPrivileges = true },
    }));

    [Fact]
    public void Readonly_rootfs_with_its_own_masked_and_readonly_paths() => Golden.Match("readonly-rootfs", Build(Base with
    {
        Security = new ContainerSecurity { ReadonlyRootfs = true, MaskedPaths = ["/proc/kcore"], ReadonlyPaths = ["/proc/sys"] },
    }));

    [Fact]
    public void Resources_and_a_clamped_oom_score_adj() => Golden.Match("resources", Build(
        Base with
        {
            Resources = new ContainerResources
            {
                CpuShares = 512, CpuQuota = 50_000, CpuPeriod = 100_000, CpusetCpus = "0-1", CpusetMems = "0",
                MemoryLimitInBytes = 256 << 20, OomScoreAdj = -998, HugepageLimits = [new("2MB", 4 << 21)],
            },
        },
        node: Node with { OomScoreAdjFloor = 0, SwapAccounting = true, PidsLimit = 1024 }));

    [Fact]
    public void Cgroup_v2_gets_unified_keys_and_a_cgroup_namespace() => Golden.Match("cgroup-v2", Build(
        Base with { Resources = new ContainerResources { MemoryLimitInBytes = 64 << 20, Unified = new Dictionary<string, string> { ["memory.high"] = "50000000" } } },
        node: Node with { CgroupV2 = true }));

    [Fact]
    public void Pod_PID_namespace_on_a_host_network_pod() => Golden.Match("pid-pod-host-network", Build(
        Base with { Security = new ContainerSecurity { Pid = ContainerPidMode.Pod } },
        pod: Pod with
        {
            Hostname = "node-1",
            NamespacePaths = new Dictionary<string, string>
            {
                ["ipc"] = "/run/berth/sandboxes/feedface/ns/ipc",
                ["pid"] = "/run/berth/sandboxes/feedface/ns/pid",
            },
        }));
}
