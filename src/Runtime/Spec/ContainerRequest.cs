namespace Berth.Runtime.Spec;

/// <summary>What CreateContainer asks for, in Runtime's own terms (CriServer maps the CRI ContainerConfig onto it).</summary>
public sealed record ContainerRequest
{
    public required string Name { get; init; }
    public IReadOnlyList<string> Command { get; init; } = [];
    public IReadOnlyList<string> Args { get; init; } = [];
    public string? WorkingDir { get; init; }
    public IReadOnlyList<KeyValuePair<string, string>> Env { get; init; } = [];
    public IReadOnlyList<ContainerMount> Mounts { get; init; } = [];
    public IReadOnlyList<ContainerDevice> Devices { get; init; } = [];
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public bool Tty { get; init; }
    public ContainerResources Resources { get; init; } = new();
    public ContainerSecurity Security { get; init; } = new();

    // Beyond the spec: what the container is kept as, with its pod and image passed beside the request.

    public uint Attempt { get; init; }

    /// <summary>The pod's name key (name, namespace, uid, attempt): with the container's name and attempt it must be unique.</summary>
    public string PodNameKey { get; init; } = "";

    /// <summary>The image as the request named it, for ContainerStatus.image.</summary>
    public string ImageSpec { get; init; } = "";

    /// <summary>The image's snapshot directories, top layer first (overlay's lowerdir order).</summary>
    public IReadOnlyList<string> LowerDirs { get; init; } = [];

    public string? LogPath { get; init; }
    public bool Stdin { get; init; }
    public bool StdinOnce { get; init; }
    public string RuntimeHandler { get; init; } = "";
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>The stop signal (the request's, else the image's STOPSIGNAL), or null for SIGTERM.</summary>
    public string? StopSignal { get; init; }

    /// <summary>CDI devices asked for (<c>CDI_devices</c> and <c>cdi.k8s.io/</c> annotations), fully qualified, in order.</summary>
    public IReadOnlyList<string> CdiDevices { get; init; } = [];

    /// <summary>An unpacked checkpoint to restore from (<c>ContainerManager.PrepareRestoreAsync</c>); the container takes it.</summary>
    public string? RestoreFrom { get; init; }

    /// <summary>What those devices do to the container, resolved at create from the node's CDI specs.</summary>
    public Cdi.CdiInjection Cdi { get; init; } = Runtime.Cdi.CdiInjection.None;
}

public enum MountPropagation
{
    Private,
    HostToContainer,
    Bidirectional,
}

public sealed record ContainerMount
{
    public required string ContainerPath { get; init; }
    public required string HostPath { get; init; }
    public bool Readonly { get; init; }

    /// <summary>Read-only all the way down: submounts of the host path too (the runtime's "rro", mount_setattr).</summary>
    public bool RecursiveReadonly { get; init; }

    public MountPropagation Propagation { get; init; } = MountPropagation.Private;

    /// <summary>An image volume: <see cref="HostPath"/> is then where berthd mounted it, set at create.</summary>
    public ImageMountSource? Image { get; init; }
}

/// <summary>
/// An image volume (KEP-4639): an image's snapshots mounted read-only as an overlay of their own, no upper dir,
/// and the part of it (<see cref="SubPath"/>, resolved inside it) the container sees.
/// </summary>
public sealed record ImageMountSource
{
    /// <summary>The image ID (its config digest), which ContainerStatus reports.</summary>
    public required string ImageRef { get; init; }

    /// <summary>The image's snapshot directories, top layer first; kept from garbage collection while mounted.</summary>
    public required List<string> LowerDirs { get; init; }

    public string SubPath { get; init; } = "";
}

/// <summary>A host device as CRI names it, already looked up on the host (type and numbers) by the caller.</summary>
public sealed record ContainerDevice
{
    public required string ContainerPath { get; init; }
    public required string HostPath { get; init; }

    /// <summary>'c' or 'b'.</summary>
    public required char Type { get; init; }

    public required long Major { get; init; }
    public required long Minor { get; init; }
    public uint FileMode { get; init; } = 0x1B6; // 0666, the permission bits of the node created in the container
    public string Permissions { get; init; } = "rwm";
}

public sealed record ContainerResources
{
    public long CpuPeriod { get; init; }
    public long CpuQuota { get; init; }
    public long CpuShares { get; init; }
    public long MemoryLimitInBytes { get; init; }
    public long MemorySwapLimitInBytes { get; init; }
    public long OomScoreAdj { get; init; }
    public string CpusetCpus { get; init; } = "";
    public string CpusetMems { get; init; } = "";
    public IReadOnlyList<KeyValuePair<string, ulong>> HugepageLimits { get; init; } = [];
    public IReadOnlyDictionary<string, string> Unified { get; init; } = new Dictionary<string, string>();
}

public enum SeccompMode
{
    /// <summary>CRI leaves it unset: Kubernetes' default is Unconfined.</summary>
    Unconfined,
    RuntimeDefault,
    Localhost,
}

public enum ContainerPidMode
{
    /// <summary>A PID namespace of its own.</summary>
    Container,
    Pod,
    Node,

    /// <summary>The PID namespace of another container (ephemeral debug containers).</summary>
    Target,
}

public enum SupplementalGroupsPolicy
{
    /// <summary>The groups /etc/group lists the user in, plus the requested ones.</summary>
    Merge,

    /// <summary>Only the requested groups.</summary>
    Strict,
}

public sealed record ContainerSecurity
{
    public bool Privileged { get; init; }
    public IReadOnlyList<string> AddCapabilities { get; init; } = [];
    public IReadOnlyList<string> DropCapabilities { get; init; } = [];
    public IReadOnlyList<string> AddAmbientCapabilities { get; init; } = [];
    public long? RunAsUser { get; init; }
    public string? RunAsUsername { get; init; }
    public long? RunAsGroup { get; init; }
    public IReadOnlyList<long> SupplementalGroups { get; init; } = [];
    public SupplementalGroupsPolicy SupplementalGroupsPolicy { get; init; }
    public bool ReadonlyRootfs { get; init; }
    public bool NoNewPrivileges { get; init; }
    public IReadOnlyList<string> MaskedPaths { get; init; } = [];
    public IReadOnlyList<string> ReadonlyPaths { get; init; } = [];
    public SeccompMode Seccomp { get; init; }

    /// <summary>The profile of <see cref="SeccompMode.Localhost"/>, read by the caller from the node.</summary>
    public OciSeccomp? SeccompProfile { get; init; }

    /// <summary>A Localhost AppArmor profile, checked loaded by the caller; null runs the container without one.</summary>
    public string? AppArmorProfile { get; init; }

    public ContainerPidMode Pid { get; init; }

    /// <summary>For <see cref="ContainerPidMode.Target"/>: the target container's PID namespace file.</summary>
    public string? TargetPidNamespace { get; init; }
}

/// <summary>The parts of the image config that shape a container.</summary>
public sealed record ImageSettings
{
    public required string ImageRef { get; init; }
    public string ImageName { get; init; } = "";
    public IReadOnlyList<string> Entrypoint { get; init; } = [];
    public IReadOnlyList<string> Cmd { get; init; } = [];
    public IReadOnlyList<string> Env { get; init; } = [];
    public string? WorkingDir { get; init; }
    public string? User { get; init; }

    /// <summary>The image's declared volumes, each with the host directory created for it by the caller.</summary>
    public IReadOnlyDictionary<string, string> Volumes { get; init; } = new Dictionary<string, string>();
}

/// <summary>What the container takes from its pod.</summary>
public sealed record PodSettings
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Namespace { get; init; }
    public required string Uid { get; init; }
    public string Hostname { get; init; } = "";
    public bool Privileged { get; init; }
    public string? CgroupParent { get; init; }

    /// <summary>Pinned namespaces by kind (network, ipc, uts, pid); a missing kind is the node's.</summary>
    public IReadOnlyDictionary<string, string> NamespacePaths { get; init; } = new Dictionary<string, string>();

    /// <summary>The pod's hostname, hosts and resolv.conf files, and its /dev/shm; null for what the pod lacks.</summary>
    public string? HostnameFile { get; init; }
    public string? HostsFile { get; init; }
    public string? ResolvConfFile { get; init; }
    public string? ShmPath { get; init; }

    /// <summary>The pod's own user namespace, which its containers join; null when the pod is in the node's.</summary>
    public PodUserNamespace? UserNamespace { get; init; }
}

/// <summary>A pod's user namespace: its pin, and its one UID and one GID range (container ID 0 first).</summary>
public sealed record PodUserNamespace(string Path, OciIdMapping Uids, OciIdMapping Gids)
{
    /// <summary>The node's IDs of the namespace's root, which owns what the pod's containers write.</summary>
    public (uint Uid, uint Gid) HostRoot => (Uids.HostId, Gids.HostId);
}

/// <summary>Node-wide settings from berthd's config and the host.</summary>
public sealed record NodeSettings
{
    public bool CgroupV2 { get; init; }

    /// <summary>The systemd cgroup driver: containers are transient scopes in their pod's slice (runc --systemd-cgroup).</summary>
    public bool SystemdCgroup { get; init; }

    /// <summary>Whether the memory cgroup accounts swap (v1: memory.memsw.*), so a swap limit can be set.</summary>
    public bool SwapAccounting { get; init; }

    /// <summary>restrict_oom_score_adj: values below berthd's own are raised to it, for hosts that refuse a lower one.</summary>
    public int? OomScoreAdjFloor { get; init; }

    public long PidsLimit { get; init; }
    public IReadOnlyList<OciRlimit> Rlimits { get; init; } = [new("RLIMIT_NOFILE", 1024, 1024)];

    /// <summary>
    /// The capability bounding set berthd runs with (bit n = capability n), or null for all: a privileged
    /// container gets what the node has, never more, or runc fails to apply the set.
    /// </summary>
    public ulong? BoundingCapabilities { get; init; }

    /// <summary>The node's devices, given to privileged containers.</summary>
    public IReadOnlyList<ContainerDevice> HostDevices { get; init; } = [];

    /// <summary>Whether the kernel has mount_setattr (5.12 and later), which recursive read-only mounts need.</summary>
    public bool MountSetattr { get; init; }

    /// <summary>Whether the filesystem of Berth's root takes idmapped mounts, which pods with their own user namespace need.</summary>
    public bool IdmappedMounts { get; init; }

    /// <summary>The node's online CPUs and memory nodes, which a cpuset may name; null when unknown (no check).</summary>
    public IReadOnlySet<int>? OnlineCpus { get; init; }

    public IReadOnlySet<int>? OnlineMems { get; init; }
}
