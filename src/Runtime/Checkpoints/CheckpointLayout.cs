using System.Text.Json.Serialization;

namespace Berth.Runtime.Checkpoints;

/// <summary>
/// A container checkpoint archive as CRI-O, Podman and containerd write it and checkpointctl reads it: CRIU's images
/// under <c>checkpoint/</c>, the container's metadata in <c>config.dump</c>, its OCI spec in <c>spec.dump</c>, its
/// writable layer's changes in <c>rootfs-diff.tar</c> (a layer: whiteouts as <c>.wh.</c> entries) with the removed
/// paths listed again in <c>deleted.files</c>, CRIU's <c>dump.log</c> and <c>stats-dump</c>, and its log.
/// </summary>
public static class CheckpointLayout
{
    public const string CheckpointDirectory = "checkpoint";
    public const string ConfigDump = "config.dump";
    public const string SpecDump = "spec.dump";
    public const string RootfsDiff = "rootfs-diff.tar";
    public const string DeletedFiles = "deleted.files";
    public const string DumpLog = "dump.log";
    public const string StatsDump = "stats-dump";
    public const string ContainerLog = "container.log";

    /// <summary>containerd's, read by checkpointctl for containerd checkpoints.</summary>
    public const string Status = "status";
}

/// <summary>config.dump: what checkpointctl shows of a container (the reduced form of Podman's, which all engines write).</summary>
public sealed record CheckpointConfig
{
    [JsonPropertyName("id")] public string Id { get; init; } = "";
    [JsonPropertyName("name")] public string Name { get; init; } = "";
    [JsonPropertyName("rootfsImage")] public string? RootfsImage { get; init; }
    [JsonPropertyName("rootfsImageRef")] public string? RootfsImageRef { get; init; }
    [JsonPropertyName("rootfsImageName")] public string? RootfsImageName { get; init; }
    [JsonPropertyName("runtime")] public string? Runtime { get; init; }
    [JsonPropertyName("createdTime")] public DateTimeOffset CreatedTime { get; init; }
    [JsonPropertyName("checkpointedTime")] public DateTimeOffset CheckpointedTime { get; init; }
    [JsonPropertyName("restoredTime")] public DateTimeOffset RestoredTime { get; init; }
    [JsonPropertyName("restored")] public bool Restored { get; init; }
}

/// <summary>containerd's <c>status</c> file, the container's state at the checkpoint.</summary>
public sealed record CheckpointStatus
{
    public long CreatedAt { get; init; }
    public long StartedAt { get; init; }
    public long FinishedAt { get; init; }
    public int ExitCode { get; init; }
    public uint Pid { get; init; }
    public string Reason { get; init; } = "";
    public string Message { get; init; } = "";
}

[JsonSerializable(typeof(CheckpointConfig))]
[JsonSerializable(typeof(CheckpointStatus))]
[JsonSerializable(typeof(List<string>))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class CheckpointJsonContext : JsonSerializerContext;
