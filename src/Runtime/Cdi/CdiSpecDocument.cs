using System.Text.Json.Serialization;

namespace Berth.Runtime.Cdi;

// A CDI spec file as written (tags.cncf.io/container-device-interface, SPEC.md). Field names are the spec's exactly;
// a field the spec does not define is refused, as the reference loader's strict unmarshalling refuses it. The strings a
// spec must have are settable, so one the file leaves out stays "" for loading to refuse (the source generator passes
// every init-only property, absent ones as null).

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CdiSpecDocument
{
    [JsonPropertyName("cdiVersion")] public string Version { get; set; } = "";
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; init; }
    [JsonPropertyName("devices")] public List<CdiDeviceDocument>? Devices { get; init; }
    [JsonPropertyName("containerEdits")] public CdiEditsDocument? ContainerEdits { get; init; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CdiDeviceDocument
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; init; }
    [JsonPropertyName("containerEdits")] public CdiEditsDocument? ContainerEdits { get; init; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CdiEditsDocument
{
    [JsonPropertyName("env")] public List<string>? Env { get; init; }
    [JsonPropertyName("deviceNodes")] public List<CdiDeviceNodeDocument>? DeviceNodes { get; init; }
    [JsonPropertyName("netDevices")] public List<CdiNetDeviceDocument>? NetDevices { get; init; }
    [JsonPropertyName("hooks")] public List<CdiHookDocument>? Hooks { get; init; }
    [JsonPropertyName("mounts")] public List<CdiMountDocument>? Mounts { get; init; }
    [JsonPropertyName("intelRdt")] public CdiIntelRdtDocument? IntelRdt { get; init; }
    [JsonPropertyName("additionalGids")] public List<uint>? AdditionalGids { get; init; }

    [JsonIgnore]
    public bool IsEmpty =>
        Env is not { Count: > 0 } && DeviceNodes is not { Count: > 0 } && NetDevices is not { Count: > 0 } && Hooks is not { Count: > 0 }
        && Mounts is not { Count: > 0 } && IntelRdt is null && AdditionalGids is not { Count: > 0 };
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CdiDeviceNodeDocument
{
    [JsonPropertyName("path")] public string Path { get; set; } = "";
    [JsonPropertyName("hostPath")] public string HostPath { get; set; } = "";
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("major")] public long Major { get; init; }
    [JsonPropertyName("minor")] public long Minor { get; init; }
    [JsonPropertyName("fileMode")] public uint? FileMode { get; init; }
    [JsonPropertyName("permissions")] public string? Permissions { get; init; }
    [JsonPropertyName("uid")] public uint? Uid { get; init; }
    [JsonPropertyName("gid")] public uint? Gid { get; init; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CdiMountDocument
{
    [JsonPropertyName("hostPath")] public string HostPath { get; set; } = "";
    [JsonPropertyName("containerPath")] public string ContainerPath { get; set; } = "";
    [JsonPropertyName("options")] public List<string>? Options { get; init; }
    [JsonPropertyName("type")] public string? Type { get; init; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CdiHookDocument
{
    [JsonPropertyName("hookName")] public string HookName { get; set; } = "";
    [JsonPropertyName("path")] public string Path { get; set; } = "";
    [JsonPropertyName("args")] public List<string>? Args { get; init; }
    [JsonPropertyName("env")] public List<string>? Env { get; init; }
    [JsonPropertyName("timeout")] public int? Timeout { get; init; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CdiIntelRdtDocument
{
    [JsonPropertyName("closID")] public string? ClosId { get; init; }
    [JsonPropertyName("l3CacheSchema")] public string? L3CacheSchema { get; init; }
    [JsonPropertyName("memBwSchema")] public string? MemBwSchema { get; init; }
    [JsonPropertyName("schemata")] public List<string>? Schemata { get; init; }
    [JsonPropertyName("enableMonitoring")] public bool EnableMonitoring { get; init; }
}

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CdiNetDeviceDocument
{
    [JsonPropertyName("hostInterfaceName")] public string HostInterfaceName { get; set; } = "";
    [JsonPropertyName("name")] public string Name { get; set; } = "";
}

[JsonSerializable(typeof(CdiSpecDocument))]
[JsonSourceGenerationOptions(
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Disallow, AllowTrailingCommas = false,
    NumberHandling = JsonNumberHandling.Strict, Converters = [typeof(ScalarStringConverter)])]
internal sealed partial class CdiJsonContext : JsonSerializerContext;

/// <summary>
/// A string field given a number or a boolean: YAML's plain scalars (a device named 0, say) arrive as those, and the
/// reference reader takes them as the string they print as.
/// </summary>
internal sealed class ScalarStringConverter : JsonConverter<string>
{
    public override string? Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            System.Text.Json.JsonTokenType.String => reader.GetString(),
            System.Text.Json.JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.ValueSpan),
            System.Text.Json.JsonTokenType.True => "true",
            System.Text.Json.JsonTokenType.False => "false",
            System.Text.Json.JsonTokenType.Null => null,
            _ => throw new System.Text.Json.JsonException($"expected a string, not {reader.TokenType}"),
        };

    public override void Write(System.Text.Json.Utf8JsonWriter writer, string value, System.Text.Json.JsonSerializerOptions options) => writer.WriteStringValue(value);

    public override string ReadAsPropertyName(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        reader.GetString()!;

    public override void WriteAsPropertyName(System.Text.Json.Utf8JsonWriter writer, string value, System.Text.Json.JsonSerializerOptions options) =>
        writer.WritePropertyName(value);
}
