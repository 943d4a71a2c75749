using System.Text.Json.Nodes;

namespace Berth.Cni;

/// <summary>
/// What one attachment is about: the container (sandbox) ID, its network namespace, the interface name, CNI_ARGS,
/// and the capability arguments (portMappings, bandwidth, dns, ipRanges) offered to plugins that declare them.
/// </summary>
public sealed record CniRuntimeConfig
{
    public required string ContainerId { get; init; }
    public required string NetnsPath { get; init; }
    public string IfName { get; init; } = "eth0";
    public IReadOnlyDictionary<string, string> Args { get; init; } = new Dictionary<string, string>();
    public JsonObject CapabilityArgs { get; init; } = [];
}
