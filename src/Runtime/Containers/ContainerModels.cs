using System.Text.Json.Serialization;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Containers;

public enum ContainerState
{
    /// <summary>CreateContainer is under way; found at startup, it is the remains of a crash and is undone.</summary>
    Creating,
    Created,
    Running,
    Exited,
    Unknown,
}

public enum ContainerChangeKind
{
    Created,
    Started,
    Exited,
    Removed,
}

/// <summary>
/// A state change, raised after the store has it, while the container's lock is held: one container's changes come
/// in the order they happened. <see cref="Record"/> is the new state, or the last one for <see cref="ContainerChangeKind.Removed"/>.
/// </summary>
public readonly record struct ContainerChange(ContainerChangeKind Kind, ContainerRecord Record);

/// <summary>A shim process, identified by PID and start time so a reused PID is never mistaken for it.</summary>
public sealed record ShimProcess(
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("startTime")] ulong StartTime);

/// <summary>A container as stored: what ContainerStatus reports and what recovery after a crash needs.</summary>
public sealed record ContainerRecord
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("podId")] public required string PodId { get; init; }
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("attempt")] public uint Attempt { get; init; }
    [JsonPropertyName("nameKey")] public required string NameKey { get; init; }
    [JsonPropertyName("state")] public ContainerState State { get; init; }
    [JsonPropertyName("createdAt")] public long CreatedAt { get; init; }
    [JsonPropertyName("startedAt")] public long StartedAt { get; init; }
    [JsonPropertyName("finishedAt")] public long FinishedAt { get; init; }
    [JsonPropertyName("exitCode")] public int ExitCode { get; init; }
    [JsonPropertyName("reason")] public string Reason { get; init; } = "";
    [JsonPropertyName("message")] public string Message { get; init; } = "";
    [JsonPropertyName("image")] public required string Image { get; init; }
    [JsonPropertyName("imageRef")] public required string ImageRef { get; init; }
    [JsonPropertyName("imageName")] public string ImageName { get; init; } = "";
    [JsonPropertyName("logPath")] public string? LogPath { get; init; }
    [JsonPropertyName("labels")] public Dictionary<string, string> Labels { get; init; } = [];
    [JsonPropertyName("annotations")] public Dictionary<string, string> Annotations { get; init; } = [];
    [JsonPropertyName("mounts")] public List<ContainerMount> Mounts { get; init; } = [];
    [JsonPropertyName("resources")] public ContainerResources Resources { get; init; } = new();
    [JsonPropertyName("runtimeHandler")] public string RuntimeHandler { get; init; } = "";
    [JsonPropertyName("tty")] public bool Tty { get; init; }
    [JsonPropertyName("stdin")] public bool Stdin { get; init; }
    [JsonPropertyName("stdinOnce")] public bool StdinOnce { get; init; }
    [JsonPropertyName("stopSignal")] public string? StopSignal { get; init; }
    [JsonPropertyName("cgroupsPath")] public string CgroupsPath { get; init; } = "";

    /// <summary>The cgroup directory below the root that the container's processes are in, as found at create ("" before).</summary>
    [JsonPropertyName("cgroupDirectory")] public string CgroupDirectory { get; init; } = "";
    [JsonPropertyName("shim")] public ShimProcess? Shim { get; init; }
    [JsonPropertyName("initPid")] public int InitPid { get; init; }

    /// <summary>The user the container's process runs as, resolved at create (ContainerStatus.user).</summary>
    [JsonPropertyName("user")] public Spec.OciUser? User { get; init; }

    /// <summary>The image snapshots under the rootfs, kept from image garbage collection while the container exists.</summary>
    [JsonPropertyName("lowerDirs")] public List<string> LowerDirs { get; init; } = [];

    /// <summary>The bundle (config.json, the rootfs mount point, the shim's sockets); volatile, under the state dir.</summary>
    [JsonPropertyName("bundle")] public required string Bundle { get; init; }

    /// <summary>The overlay's upper and work dirs and the image volumes; persistent, under the root.</summary>
    [JsonPropertyName("directory")] public required string Directory { get; init; }

    /// <summary>
    /// A container created from a checkpoint and not started yet: the unpacked checkpoint (CRIU's images), from which
    /// StartContainer restores it. Null once it runs, and for every other container.
    /// </summary>
    [JsonPropertyName("restoreFrom")] public string? RestoreFrom { get; init; }
}

[JsonSerializable(typeof(ContainerRecord))]
[JsonSourceGenerationOptions(WriteIndented = true, UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class ContainerJsonContext : JsonSerializerContext;
