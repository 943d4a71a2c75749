using System.Text.Json.Serialization;

namespace Berth.NriTestPlugin;

/// <summary>What the test plugin does, as a test writes it (JSON, camelCase).</summary>
// Settable, not init: the JSON source generator sets every init-only property, so a missing list would be null.
public sealed record PluginBehavior
{
    /// <summary>Event names to subscribe to (NRI's pretty names); none subscribes to all.</summary>
    public List<string> Events { get; set; } = [];

    /// <summary>A file each event is appended to: "Event pod=NAME container=NAME".</summary>
    public string? Record { get; set; }

    public Dictionary<string, string> Env { get; set; } = [];
    public List<string> RemoveEnv { get; set; } = [];
    public Dictionary<string, string> Annotations { get; set; } = [];
    public List<PluginMount> Mounts { get; set; } = [];
    public string? Cpuset { get; set; }
    public long? MemoryLimit { get; set; }
    public List<PluginRlimit> Rlimits { get; set; } = [];
    public List<string> CdiDevices { get; set; } = [];
    public long? OomScoreAdj { get; set; }

    /// <summary>On UpdateContainer, sets this CPU quota instead of the one asked for.</summary>
    public long? UpdateCpuQuota { get; set; }

    /// <summary>The event this plugin never answers.</summary>
    public string? HangOn { get; set; }

    /// <summary>The event this plugin answers with an error.</summary>
    public string? FailOn { get; set; }

    /// <summary>As a validator, rejects every container adjustment with this reason.</summary>
    public string? Reject { get; set; }

    /// <summary>After answering PostStartContainer, asks the runtime (UpdateContainers) to set the container's CPU shares.</summary>
    public ulong? UpdateSharesAfterStart { get; set; }

    /// <summary>After answering PostStartContainer, asks the runtime to evict the container, with this reason.</summary>
    public string? EvictAfterStart { get; set; }

    /// <summary>Behave like a plugin built on a stub older than NRI v0.10: pod and post events only through StateChange.</summary>
    public bool StateChangeOnly { get; set; }
}

public sealed record PluginMount(string Destination, string Source, string Type, List<string> Options);

public sealed record PluginRlimit(string Type, ulong Hard, ulong Soft);

[JsonSerializable(typeof(PluginBehavior))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class BehaviorJsonContext : JsonSerializerContext;
