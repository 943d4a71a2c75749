using System.Text.Json.Nodes;

namespace Berth.Cni;

/// <summary>
/// A network configuration list as loaded: its name, CNI version and plugin configs in order.
/// A single-plugin <c>.conf</c> is loaded as a list of one, as libcni does.
/// </summary>
public sealed record CniNetworkConfig(string Name, string CniVersion, IReadOnlyList<JsonObject> Plugins, string SourcePath, bool DisableCheck, bool DisableGc = false)
{
    /// <summary>STATUS and GC exist from CNI 1.1.0; plugins of older configs are never asked for them.</summary>
    public bool SupportsStatusAndGc => Version.TryParse(CniVersion, out var version) && version >= new Version(1, 1, 0);

    /// <summary>The plugin types in chain order, e.g. bridge, portmap.</summary>
    public IEnumerable<string> PluginTypes => Plugins.Select(p => (string)p["type"]!);
}
