using System.Text.Json.Serialization;

namespace Berth.Sandbox;

/// <summary>What RunPodSandbox asks for, in the component's own terms (CriServer maps the CRI message onto it).</summary>
public sealed record SandboxRequest
{
    public required string Name { get; init; }
    public required string Namespace { get; init; }
    public required string Uid { get; init; }
    public uint Attempt { get; init; }
    public string? Hostname { get; init; }
    public string? LogDirectory { get; init; }
    public DnsSettings? Dns { get; init; }
    public IReadOnlyList<PortMapping> PortMappings { get; init; } = [];
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public bool HostNetwork { get; init; }
    public bool HostIpc { get; init; }
    public PidMode Pid { get; init; } = PidMode.Container;

    /// <summary>linux.security_context.privileged: only a privileged pod may hold privileged containers.</summary>
    public bool Privileged { get; init; }

    public IReadOnlyDictionary<string, string> Sysctls { get; init; } = new Dictionary<string, string>();
    public string? CgroupParent { get; init; }
    public string RuntimeHandler { get; init; } = "";

    /// <summary>The pod's own user namespace (CRI userns_options mode POD); null runs it in the node's.</summary>
    public UserNamespaceMapping? UserNamespace { get; init; }
}

/// <summary>One range of a user namespace's ID map: IDs from ContainerId inside are IDs from HostId on the node.</summary>
public sealed record IdMapping(
    [property: JsonPropertyName("containerId")] uint ContainerId,
    [property: JsonPropertyName("hostId")] uint HostId,
    [property: JsonPropertyName("length")] uint Length)
{
    /// <summary>The line of /proc/PID/uid_map or gid_map.</summary>
    public string ToMapLine() => FormattableString.Invariant($"{ContainerId} {HostId} {Length}\n");
}

/// <summary>A pod user namespace's maps: one range each, as kubelet allocates them.</summary>
public sealed record UserNamespaceMapping(
    [property: JsonPropertyName("uids")] IdMapping Uids,
    [property: JsonPropertyName("gids")] IdMapping Gids)
{
    /// <summary>The node's IDs of the namespace's root, who owns the pod's own files and /dev/shm.</summary>
    [JsonIgnore]
    public (uint Uid, uint Gid) Root => (Uids.HostId, Gids.HostId);
}

/// <summary>Whose PID namespace the pod's containers get: one shared by the pod, each its own, or the node's.</summary>
public enum PidMode
{
    Pod,
    Container,
    Node,
}

public sealed record DnsSettings(IReadOnlyList<string> Servers, IReadOnlyList<string> Searches, IReadOnlyList<string> Options);

public sealed record PortMapping
{
    [JsonPropertyName("protocol")] public string Protocol { get; init; } = "tcp";
    [JsonPropertyName("containerPort")] public int ContainerPort { get; init; }
    [JsonPropertyName("hostPort")] public int HostPort { get; init; }
    [JsonPropertyName("hostIP")] public string HostIp { get; init; } = "";
}

public enum SandboxState
{
    /// <summary>RunPodSandbox is under way; found at startup, it is the remains of a crash and is undone.</summary>
    Creating,
    Ready,
    NotReady,
}

/// <summary>A sandbox as stored: everything needed to report it, tear it down, and recover after a crash.</summary>
public sealed record SandboxRecord
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("uid")] public required string Uid { get; init; }
    [JsonPropertyName("attempt")] public uint Attempt { get; init; }
    [JsonPropertyName("state")] public SandboxState State { get; init; }
    [JsonPropertyName("createdAt")] public long CreatedAtUnixNanos { get; init; }
    [JsonPropertyName("hostname")] public string Hostname { get; init; } = "";
    [JsonPropertyName("logDirectory")] public string? LogDirectory { get; init; }
    [JsonPropertyName("labels")] public Dictionary<string, string> Labels { get; init; } = [];
    [JsonPropertyName("annotations")] public Dictionary<string, string> Annotations { get; init; } = [];
    [JsonPropertyName("runtimeHandler")] public string RuntimeHandler { get; init; } = "";
    [JsonPropertyName("hostNetwork")] public bool HostNetwork { get; init; }
    [JsonPropertyName("hostIpc")] public bool HostIpc { get; init; }
    [JsonPropertyName("pid")] public PidMode Pid { get; init; } = PidMode.Container;
    [JsonPropertyName("privileged")] public bool Privileged { get; init; }
    [JsonPropertyName("cgroupParent")] public string? CgroupParent { get; init; }
    [JsonPropertyName("portMappings")] public List<PortMapping> PortMappings { get; init; } = [];
    [JsonPropertyName("ips")] public List<string> Ips { get; init; } = [];

    /// <summary>The infra process holding the pod's shared PID namespace; only for <see cref="PidMode.Pod"/>.</summary>
    [JsonPropertyName("infra")] public InfraProcess? Infra { get; init; }

    /// <summary>The ID maps of the pod's own user namespace; null when the pod is in the node's.</summary>
    [JsonPropertyName("userNamespace")] public UserNamespaceMapping? UserNamespace { get; init; }

    /// <summary>Pinned namespace files that containers join (user, net, ipc, uts, pid), absent for the host's.</summary>
    [JsonPropertyName("namespacePaths")] public Dictionary<string, string> NamespacePaths { get; init; } = [];

    /// <summary>The pod's /dev/shm (a tmpfs), or null when the pod uses the node's IPC namespace.</summary>
    [JsonPropertyName("shmPath")] public string? ShmPath { get; init; }

    /// <summary>Directory of the pod's hostname, hosts and resolv.conf, which containers mount.</summary>
    [JsonPropertyName("directory")] public required string Directory { get; init; }

    /// <summary>
    /// A NotReady pod whose network, namespaces and /dev/shm are all released. A NotReady record without it is a
    /// StopPodSandbox that a crash cut short, which the next start finishes.
    /// </summary>
    [JsonPropertyName("released")] public bool Released { get; init; }

    [JsonIgnore] public string NameKey => NameKeyOf(Name, Namespace, Uid, Attempt);

    /// <summary>The pod's files that its containers mount.</summary>
    [JsonIgnore] public string HostnamePath => Path.Combine(Directory, PodFiles.HostnameFile);
    [JsonIgnore] public string HostsPath => Path.Combine(Directory, PodFiles.HostsFile);
    [JsonIgnore] public string ResolvConfPath => Path.Combine(Directory, PodFiles.ResolvConfFile);

    public static string NameKeyOf(string name, string ns, string uid, uint attempt) => $"{name}_{ns}_{uid}_{attempt}";
}

[JsonSerializable(typeof(SandboxRecord))]
[JsonSourceGenerationOptions(WriteIndented = true, UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class SandboxJsonContext : JsonSerializerContext;
