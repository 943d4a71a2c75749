using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;

namespace Berth.CriServer.Checkpoints;

/// <summary>
/// A pod checkpoint (CheckpointPod's <c>output_path</c>, RestorePod's <c>checkpoint_path</c>) is a directory: the pod's
/// configuration in <c>pod.dump</c>, one container checkpoint archive per container (<c>&lt;name&gt;.tar</c>, the
/// layout CheckpointContainer writes) with that container's configuration in <c>&lt;name&gt;.dump</c>, and
/// <c>pod.options</c> naming them. The configurations are CRI's own messages in protobuf's binary encoding, so a
/// RestorePod without configs of its own makes the pod and containers kubelet had asked for.
/// </summary>
internal static class PodCheckpointFiles
{
    public const string Options = "pod.options";
    public const string PodDump = "pod.dump";

    public static string ArchiveOf(string name) => name + ".tar";

    public static string DumpOf(string name) => name + ".dump";

    public static void WriteOptions(string directory, PodCheckpointOptions options) =>
        File.WriteAllBytes(Path.Combine(directory, Options), JsonSerializer.SerializeToUtf8Bytes(options, PodCheckpointJsonContext.Default.PodCheckpointOptions));

    public static void WriteMessage(string path, IMessage message)
    {
        using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        message.WriteTo(file);
    }

    /// <summary>pod.options of a pod checkpoint; an <see cref="InvalidDataException"/> says why a directory is none.</summary>
    public static PodCheckpointOptions ReadOptions(string directory)
    {
        var path = Path.Combine(directory, Options);
        if (!File.Exists(path)) throw new InvalidDataException($"it has no {Options}");
        PodCheckpointOptions? options;
        try
        {
            options = JsonSerializer.Deserialize(File.ReadAllBytes(path), PodCheckpointJsonContext.Default.PodCheckpointOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"its {Options} is not JSON: {e.Message}", e);
        }
        if (options is null || options.Version != 1) throw new InvalidDataException($"its {Options} is not version 1 of Berth's pod checkpoint");
        if (options.Containers.Count == 0) throw new InvalidDataException($"its {Options} names no container");
        foreach (var name in options.Containers)
        {
            if (!IsName(name)) throw new InvalidDataException($"its {Options} names a container '{name}', which is no container name");
            if (!File.Exists(Path.Combine(directory, ArchiveOf(name)))) throw new InvalidDataException($"it has no {ArchiveOf(name)} for container {name}");
        }
        return options;
    }

    public static T ReadMessage<T>(string path, MessageParser<T> parser) where T : IMessage<T>
    {
        if (!File.Exists(path)) throw new InvalidDataException($"it has no {Path.GetFileName(path)}");
        try
        {
            using var file = File.OpenRead(path);
            return parser.ParseFrom(file);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"its {Path.GetFileName(path)} is no {typeof(T).Name}: {e.Message}", e);
        }
    }

    /// <summary>A container name that is one file name: what kubelet's names (DNS labels) always are.</summary>
    public static bool IsName(string name) =>
        name.Length is > 0 and <= 200 && name != "." && name != ".." && name != "pod" && !name.Contains('/', StringComparison.Ordinal) && !name.Contains('\0', StringComparison.Ordinal);
}

/// <summary>pod.options: the checkpoint's version, its pod, and its containers in the order they are restored.</summary>
internal sealed record PodCheckpointOptions
{
    [JsonPropertyName("version")] public int Version { get; init; } = 1;
    [JsonPropertyName("pod")] public string Pod { get; init; } = "";
    [JsonPropertyName("namespace")] public string Namespace { get; init; } = "";
    [JsonPropertyName("checkpointedTime")] public DateTimeOffset CheckpointedTime { get; init; }
    [JsonPropertyName("containers")] public List<string> Containers { get; init; } = [];
}

[JsonSerializable(typeof(PodCheckpointOptions))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class PodCheckpointJsonContext : JsonSerializerContext;
