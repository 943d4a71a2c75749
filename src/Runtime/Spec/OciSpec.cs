using System.Text.Json.Serialization;

namespace Berth.Runtime.Spec;

// The OCI runtime spec (config.json), as far as Berth writes it. Names follow opencontainers/runtime-spec
// config.md and config-linux.md exactly; unset optional fields are left out of the JSON.

public sealed record OciSpec
{
    [JsonPropertyName("ociVersion")] public string OciVersion { get; init; } = "1.0.2";
    [JsonPropertyName("process")] public required OciProcess Process { get; init; }
    [JsonPropertyName("root")] public required OciRoot Root { get; init; }
    [JsonPropertyName("hostname")] public string? Hostname { get; init; }
    [JsonPropertyName("mounts")] public List<OciMount> Mounts { get; init; } = [];
    [JsonPropertyName("hooks")] public OciHooks? Hooks { get; init; }
    [JsonPropertyName("annotations")] public SortedDictionary<string, string>? Annotations { get; init; }
    [JsonPropertyName("linux")] public required OciLinux Linux { get; init; }
}

/// <summary>The hooks of each stage (config.md "POSIX-platform Hooks"); a stage without hooks is left out.</summary>
public sealed record OciHooks
{
    [JsonPropertyName("prestart")] public List<OciHook>? Prestart { get; init; }
    [JsonPropertyName("createRuntime")] public List<OciHook>? CreateRuntime { get; init; }
    [JsonPropertyName("createContainer")] public List<OciHook>? CreateContainer { get; init; }
    [JsonPropertyName("startContainer")] public List<OciHook>? StartContainer { get; init; }
    [JsonPropertyName("poststart")] public List<OciHook>? Poststart { get; init; }
    [JsonPropertyName("poststop")] public List<OciHook>? Poststop { get; init; }
}

public sealed record OciHook
{
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("args")] public List<string>? Args { get; init; }
    [JsonPropertyName("env")] public List<string>? Env { get; init; }
    [JsonPropertyName("timeout")] public int? Timeout { get; init; }
}

public sealed record OciProcess
{
    [JsonPropertyName("terminal")] public bool Terminal { get; init; }
    [JsonPropertyName("user")] public required OciUser User { get; init; }
    [JsonPropertyName("args")] public required List<string> Args { get; init; }
    [JsonPropertyName("env")] public List<string> Env { get; init; } = [];
    [JsonPropertyName("cwd")] public required string Cwd { get; init; }
    [JsonPropertyName("capabilities")] public OciCapabilities? Capabilities { get; init; }
    [JsonPropertyName("rlimits")] public List<OciRlimit>? Rlimits { get; init; }
    [JsonPropertyName("noNewPrivileges")] public bool NoNewPrivileges { get; init; }
    [JsonPropertyName("apparmorProfile")] public string? ApparmorProfile { get; init; }
    [JsonPropertyName("oomScoreAdj")] public int? OomScoreAdj { get; init; }
    [JsonPropertyName("ioPriority")] public OciIoPriority? IoPriority { get; init; }
    [JsonPropertyName("scheduler")] public OciScheduler? Scheduler { get; init; }
}

/// <summary>process.ioPriority (runtime-spec 1.2): class IOPRIO_CLASS_RT, _BE or _IDLE.</summary>
public sealed record OciIoPriority(
    [property: JsonPropertyName("class")] string Class,
    [property: JsonPropertyName("priority")] int Priority);

/// <summary>process.scheduler (runtime-spec 1.2, sched_setattr(2)).</summary>
public sealed record OciScheduler
{
    [JsonPropertyName("policy")] public required string Policy { get; init; }
    [JsonPropertyName("nice")] public int? Nice { get; init; }
    [JsonPropertyName("priority")] public int? Priority { get; init; }
    [JsonPropertyName("flags")] public List<string>? Flags { get; init; }
    [JsonPropertyName("runtime")] public ulong? Runtime { get; init; }
    [JsonPropertyName("deadline")] public ulong? Deadline { get; init; }
    [JsonPropertyName("period")] public ulong? Period { get; init; }
}

public sealed record OciUser
{
    [JsonPropertyName("uid")] public uint Uid { get; init; }
    [JsonPropertyName("gid")] public uint Gid { get; init; }
    [JsonPropertyName("additionalGids")] public List<uint>? AdditionalGids { get; init; }
}

public sealed record OciCapabilities
{
    [JsonPropertyName("bounding")] public List<string> Bounding { get; init; } = [];
    [JsonPropertyName("effective")] public List<string> Effective { get; init; } = [];
    [JsonPropertyName("permitted")] public List<string> Permitted { get; init; } = [];
    [JsonPropertyName("ambient")] public List<string>? Ambient { get; init; }
}

public sealed record OciRlimit(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("hard")] ulong Hard,
    [property: JsonPropertyName("soft")] ulong Soft);

public sealed record OciRoot
{
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("readonly")] public bool Readonly { get; init; }
}

public sealed record OciMount
{
    [JsonPropertyName("destination")] public required string Destination { get; init; }
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("source")] public required string Source { get; init; }
    [JsonPropertyName("options")] public List<string> Options { get; init; } = [];
}

public sealed record OciLinux
{
    [JsonPropertyName("resources")] public OciResources? Resources { get; init; }
    [JsonPropertyName("cgroupsPath")] public string? CgroupsPath { get; init; }
    [JsonPropertyName("namespaces")] public List<OciNamespace> Namespaces { get; init; } = [];
    [JsonPropertyName("uidMappings")] public List<OciIdMapping>? UidMappings { get; init; }
    [JsonPropertyName("gidMappings")] public List<OciIdMapping>? GidMappings { get; init; }
    [JsonPropertyName("devices")] public List<OciDevice>? Devices { get; init; }
    [JsonPropertyName("seccomp")] public OciSeccomp? Seccomp { get; init; }
    [JsonPropertyName("rootfsPropagation")] public string? RootfsPropagation { get; init; }
    [JsonPropertyName("maskedPaths")] public List<string>? MaskedPaths { get; init; }
    [JsonPropertyName("readonlyPaths")] public List<string>? ReadonlyPaths { get; init; }
    [JsonPropertyName("intelRdt")] public OciIntelRdt? IntelRdt { get; init; }
    [JsonPropertyName("netDevices")] public SortedDictionary<string, OciNetDevice>? NetDevices { get; init; }
    [JsonPropertyName("sysctl")] public SortedDictionary<string, string>? Sysctl { get; init; }
    [JsonPropertyName("memoryPolicy")] public OciMemoryPolicy? MemoryPolicy { get; init; }
}

/// <summary>linux.memoryPolicy (runtime-spec 1.3, set_mempolicy(2)).</summary>
public sealed record OciMemoryPolicy
{
    [JsonPropertyName("mode")] public required string Mode { get; init; }
    [JsonPropertyName("nodes")] public string? Nodes { get; init; }
    [JsonPropertyName("flags")] public List<string>? Flags { get; init; }
}

public sealed record OciIntelRdt
{
    [JsonPropertyName("closID")] public string? ClosId { get; init; }
    [JsonPropertyName("l3CacheSchema")] public string? L3CacheSchema { get; init; }
    [JsonPropertyName("memBwSchema")] public string? MemBwSchema { get; init; }
    [JsonPropertyName("schemata")] public List<string>? Schemata { get; init; }
    [JsonPropertyName("enableMonitoring")] public bool? EnableMonitoring { get; init; }
}

/// <summary>A host network interface moved into the container (runtime-spec 1.3 <c>linux.netDevices</c>, keyed by the host name).</summary>
public sealed record OciNetDevice([property: JsonPropertyName("name")] string Name);

public sealed record OciIdMapping(
    [property: JsonPropertyName("containerID")] uint ContainerId,
    [property: JsonPropertyName("hostID")] uint HostId,
    [property: JsonPropertyName("size")] uint Size);

public sealed record OciNamespace(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("path"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Path = null);

public sealed record OciDevice
{
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("major")] public long Major { get; init; }
    [JsonPropertyName("minor")] public long Minor { get; init; }
    [JsonPropertyName("fileMode")] public uint? FileMode { get; init; }
    [JsonPropertyName("uid")] public uint? Uid { get; init; }
    [JsonPropertyName("gid")] public uint? Gid { get; init; }
}

public sealed record OciResources
{
    [JsonPropertyName("devices")] public List<OciDeviceCgroup>? Devices { get; init; }
    [JsonPropertyName("memory")] public OciMemory? Memory { get; init; }
    [JsonPropertyName("cpu")] public OciCpu? Cpu { get; init; }
    [JsonPropertyName("pids")] public OciPids? Pids { get; init; }
    [JsonPropertyName("hugepageLimits")] public List<OciHugepageLimit>? HugepageLimits { get; init; }
    [JsonPropertyName("unified")] public SortedDictionary<string, string>? Unified { get; init; }
}

public sealed record OciDeviceCgroup
{
    [JsonPropertyName("allow")] public bool Allow { get; init; }
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("major")] public long? Major { get; init; }
    [JsonPropertyName("minor")] public long? Minor { get; init; }
    [JsonPropertyName("access")] public string? Access { get; init; }
}

public sealed record OciMemory
{
    [JsonPropertyName("limit")] public long? Limit { get; init; }
    [JsonPropertyName("reservation")] public long? Reservation { get; init; }
    [JsonPropertyName("swap")] public long? Swap { get; init; }
    [JsonPropertyName("kernel")] public long? Kernel { get; init; }
    [JsonPropertyName("kernelTCP")] public long? KernelTcp { get; init; }
    [JsonPropertyName("swappiness")] public ulong? Swappiness { get; init; }
    [JsonPropertyName("disableOOMKiller")] public bool? DisableOomKiller { get; init; }
    [JsonPropertyName("useHierarchy")] public bool? UseHierarchy { get; init; }
}

public sealed record OciCpu
{
    [JsonPropertyName("shares")] public ulong? Shares { get; init; }
    [JsonPropertyName("quota")] public long? Quota { get; init; }
    [JsonPropertyName("period")] public ulong? Period { get; init; }
    [JsonPropertyName("realtimeRuntime")] public long? RealtimeRuntime { get; init; }
    [JsonPropertyName("realtimePeriod")] public ulong? RealtimePeriod { get; init; }
    [JsonPropertyName("cpus")] public string? Cpus { get; init; }
    [JsonPropertyName("mems")] public string? Mems { get; init; }
}

public sealed record OciPids([property: JsonPropertyName("limit")] long Limit);

public sealed record OciHugepageLimit(
    [property: JsonPropertyName("pageSize")] string PageSize,
    [property: JsonPropertyName("limit")] ulong Limit);

public sealed record OciSeccomp
{
    [JsonPropertyName("defaultAction")] public required string DefaultAction { get; init; }
    [JsonPropertyName("defaultErrnoRet")] public uint? DefaultErrnoRet { get; init; }
    [JsonPropertyName("architectures")] public List<string>? Architectures { get; init; }
    [JsonPropertyName("flags")] public List<string>? Flags { get; init; }
    [JsonPropertyName("listenerPath")] public string? ListenerPath { get; init; }
    [JsonPropertyName("listenerMetadata")] public string? ListenerMetadata { get; init; }
    [JsonPropertyName("syscalls")] public List<OciSyscall>? Syscalls { get; init; }
}

public sealed record OciSyscall
{
    [JsonPropertyName("names")] public required List<string> Names { get; init; }
    [JsonPropertyName("action")] public required string Action { get; init; }
    [JsonPropertyName("errnoRet")] public uint? ErrnoRet { get; init; }
    [JsonPropertyName("args")] public List<OciSeccompArg>? Args { get; init; }
}

public sealed record OciSeccompArg
{
    [JsonPropertyName("index")] public uint Index { get; init; }
    [JsonPropertyName("value")] public ulong Value { get; init; }
    [JsonPropertyName("valueTwo")] public ulong ValueTwo { get; init; }
    [JsonPropertyName("op")] public required string Op { get; init; }
}

[JsonSerializable(typeof(OciSpec))]
[JsonSerializable(typeof(OciSeccomp))]
[JsonSerializable(typeof(OciResources))]
[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
public sealed partial class OciJsonContext : JsonSerializerContext;
