using System.Text.Json.Serialization;

namespace Berth.ImageStore.Images;

/// <summary>What Berth knows about one pulled image. Its ID is the config digest, as in containerd and Docker.</summary>
public sealed record ImageRecord
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("repoTags")] public List<string> RepoTags { get; init; } = [];
    [JsonPropertyName("repoDigests")] public List<string> RepoDigests { get; init; } = [];
    [JsonPropertyName("manifestDigest")] public required string ManifestDigest { get; init; }
    [JsonPropertyName("manifestMediaType")] public required string ManifestMediaType { get; init; }

    /// <summary>Bytes the image occupies in the registry's terms: config plus compressed layers.</summary>
    [JsonPropertyName("size")] public long Size { get; init; }

    /// <summary>Layer blob digests, bottom first; they are kept in the content store.</summary>
    [JsonPropertyName("layers")] public List<string> Layers { get; init; } = [];

    /// <summary>Snapshot chain IDs, bottom first: the overlay lower dirs.</summary>
    [JsonPropertyName("chainIds")] public List<string> ChainIds { get; init; } = [];

    /// <summary>The image config's <c>User</c>, kept for ImageStatus without reading the config.</summary>
    [JsonPropertyName("user")] public string? User { get; init; }

    /// <summary>The manifest's annotations (a checkpoint image says so there).</summary>
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; init; }

    /// <summary>
    /// An image that holds a container checkpoint in its one layer, as CRI-O and checkpointctl build them: its manifest
    /// names the checkpointed container (<c>org.criu.checkpoint.container.name</c>, or CRI-O's older annotation).
    /// </summary>
    [JsonIgnore]
    public bool IsCheckpoint =>
        Layers.Count == 1 && Annotations is { } annotations
        && (annotations.ContainsKey("org.criu.checkpoint.container.name") || annotations.ContainsKey("io.kubernetes.cri-o.annotations.checkpoint.name"));
}

[JsonSerializable(typeof(ImageRecord))]
[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class ImageJsonContext : JsonSerializerContext;
