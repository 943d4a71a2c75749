using System.Text.Json;
using System.Text.Json.Nodes;

namespace Berth.Cni;

/// <summary>
/// Finds the node's network: the lexically first valid <c>.conflist</c>, <c>.conf</c> or <c>.json</c> across the
/// configured directories, as kubelet's CNI conventions (and containerd and CRI-O) do. Invalid files are skipped
/// with a reason, so one broken file does not take the node's network down.
/// </summary>
public static class CniConfigLoader
{
    private static readonly string[] Extensions = [".conflist", ".conf", ".json"];

    /// <summary>The chosen config, or null with the reason none is usable (for Status' NetworkReady).</summary>
    public static (CniNetworkConfig? Config, string Reason) Load(IReadOnlyList<string> confDirs)
    {
        var files = confDirs
            .Where(Directory.Exists)
            .SelectMany(Directory.EnumerateFiles)
            .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.Ordinal))
            .OrderBy(Path.GetFileName, StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
            return (null, $"no network config found in {string.Join(", ", confDirs)}");

        var problems = new List<string>();
        foreach (var file in files)
        {
            try
            {
                return (Parse(File.ReadAllText(file), file), "");
            }
            catch (Exception e) when (e is CniException or JsonException or IOException or InvalidOperationException)
            {
                problems.Add($"{file}: {e.Message}");
            }
        }
        return (null, $"no valid network config: {string.Join("; ", problems)}");
    }

    /// <summary>Parses one file's text; a <c>.conflist</c> has <c>plugins</c>, a <c>.conf</c> is one plugin.</summary>
    public static CniNetworkConfig Parse(string json, string sourcePath)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new CniException("not a JSON object");
        var name = root["name"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name)) throw new CniException("\"name\" is missing");
        var version = root["cniVersion"]?.GetValue<string>();
        if (string.IsNullOrEmpty(version)) throw new CniException("\"cniVersion\" is missing");

        List<JsonObject> plugins;
        if (root["plugins"] is JsonArray list)
        {
            plugins = [.. list.Select((p, i) => p as JsonObject ?? throw new CniException($"plugins[{i}] is not an object"))];
            if (plugins.Count == 0) throw new CniException("\"plugins\" is empty");
        }
        else if (root["type"] is not null)
        {
            plugins = [root];
        }
        else
        {
            throw new CniException("neither \"plugins\" (a list) nor \"type\" (a single plugin)");
        }

        for (var i = 0; i < plugins.Count; i++)
        {
            if (plugins[i]["type"]?.GetValue<string>() is not { Length: > 0 } type)
                throw new CniException($"plugins[{i}] has no \"type\"");
            if (type.Contains('/', StringComparison.Ordinal) || type is "." or "..")
                throw new CniException($"plugins[{i}]: type '{type}' is not a plugin name");
        }
        var disableCheck = root["disableCheck"]?.GetValueKind() == JsonValueKind.True;
        var disableGc = root["disableGC"]?.GetValueKind() == JsonValueKind.True;
        return new CniNetworkConfig(name, version, plugins, sourcePath, disableCheck, disableGc);
    }
}
