using System.Text;
using System.Text.Json.Nodes;

namespace Berth.Cni;

/// <summary>Where CNI looks for configs and plugins, and where it remembers what each ADD used.</summary>
public sealed record CniOptions
{
    public IReadOnlyList<string> ConfDirs { get; init; } = ["/etc/cni/net.d"];
    public IReadOnlyList<string> BinDirs { get; init; } = ["/opt/cni/bin", "/usr/lib/cni"];
    public required string CacheDir { get; init; }
}

/// <summary>
/// The node's pod network: runs the plugin chain for ADD in order (each plugin gets the previous one's result as
/// <c>prevResult</c>) and DEL in reverse. Every ADD's exact config and result are cached on disk, so a DEL after a
/// config change or a restart undoes what the ADD did, with the same plugins.
/// </summary>
public sealed class CniNetwork : IPodNetwork
{
    private readonly CniOptions _options;
    private readonly CniPluginRunner _runner;
    private readonly Lock _lock = new();
    private (CniNetworkConfig? Config, string Reason) _loaded;
    private string? _loadedSignature;

    public CniNetwork(CniOptions options)
    {
        _options = options;
        _runner = new CniPluginRunner(options.BinDirs);
        Directory.CreateDirectory(options.CacheDir);
    }

    /// <summary>The config in force, re-read when the files in the config directories change.</summary>
    public (CniNetworkConfig? Config, string Reason) Current
    {
        get
        {
            var signature = Signature();
            lock (_lock)
            {
                if (signature != _loadedSignature)
                {
                    _loaded = CniConfigLoader.Load(_options.ConfDirs);
                    _loadedSignature = signature;
                }
                return _loaded;
            }
        }
    }

    public async Task<CniResult> AddAsync(CniRuntimeConfig runtime, CancellationToken cancellationToken)
    {
        var config = Current.Config ?? throw new CniException($"network not ready: {Current.Reason}");
        JsonObject? previous = null;
        foreach (var plugin in config.Plugins)
        {
            var pluginConfig = PluginConfig(config, plugin, previous, runtime.CapabilityArgs);
            previous = await _runner.InvokeAsync("ADD", (string)plugin["type"]!, pluginConfig, runtime, cancellationToken)
                       ?? throw new CniException($"{plugin["type"]} ADD printed no result");
        }
        var result = CniResultParser.Parse(previous!);
        await CacheAsync(config, runtime, result.Raw, cancellationToken);
        return result;
    }

    /// <summary>
    /// Undoes an ADD with the config and result it used (from the cache), or with the current config when nothing
    /// was cached. Idempotent: a second DEL, or one after a failed ADD, succeeds.
    /// </summary>
    public async Task DelAsync(CniRuntimeConfig runtime, CancellationToken cancellationToken) =>
        await DelAsync(runtime, onlyIfAdded: false, cancellationToken);

    /// <summary>
    /// With <paramref name="onlyIfAdded"/>, nothing runs unless a completed ADD is cached: the cheap path for
    /// tearing down what is known to be set up. Without it, a DEL runs anyway, for an ADD cut short by a crash.
    /// </summary>
    public async Task DelAsync(CniRuntimeConfig runtime, bool onlyIfAdded, CancellationToken cancellationToken)
    {
        var cached = await ReadCacheAsync(runtime, cancellationToken);
        if (cached is null && onlyIfAdded) return;
        var config = cached?.Config ?? Current.Config;
        if (config is null) return; // Nothing was set up through CNI, and nothing can be undone.
        var previous = cached?.Result;
        foreach (var plugin in config.Plugins.Reverse())
        {
            var pluginConfig = PluginConfig(config, plugin, previous, cached?.CapabilityArgs ?? runtime.CapabilityArgs);
            await _runner.InvokeAsync("DEL", (string)plugin["type"]!, pluginConfig, runtime, cancellationToken);
        }
        File.Delete(CachePath(config.Name, runtime));
    }

    /// <summary>
    /// Whether the network can take new pods: a usable config, and for CNI 1.1 configs every plugin's STATUS
    /// succeeding in chain order. Older plugins know no STATUS, so for them a usable config is all there is.
    /// </summary>
    public async Task<(bool Ready, string Reason)> StatusAsync(CancellationToken cancellationToken)
    {
        var (config, reason) = Current;
        if (config is null) return (false, reason);
        if (!config.SupportsStatusAndGc) return (true, "");
        foreach (var plugin in config.Plugins)
        {
            try
            {
                await _runner.InvokeAsync("STATUS", (string)plugin["type"]!, PluginConfig(config, plugin, null, []), null, cancellationToken);
            }
            catch (CniException e)
            {
                return (false, $"{config.Name} ({config.SourcePath}): {e.Message}");
            }
        }
        return (true, "");
    }

    /// <summary>
    /// Frees what attachments of gone sandboxes still hold. A cached ADD whose container is not in
    /// <paramref name="liveContainerIds"/> is DELeted with the config it used, whatever the CNI version (a leak
    /// that only a crash between steps could leave). Then, for a CNI 1.1 config without <c>disableGC</c>, every
    /// plugin gets GC with the attachments still valid. Errors do not stop the rest; they are returned.
    /// </summary>
    public async Task<IReadOnlyList<string>> GarbageCollectAsync(IReadOnlySet<string> liveContainerIds, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        var valid = new List<(string Network, string ContainerId, string IfName)>();
        // A cache entry is written aside and renamed into place; one left aside is from a crash mid-write. Its ADD
        // belongs to a sandbox still Creating, which recovery has already DELeted with the current config.
        foreach (var stale in Directory.EnumerateFiles(_options.CacheDir, "*" + TemporarySuffix)) File.Delete(stale);
        foreach (var path in Directory.EnumerateFiles(_options.CacheDir, "*.json"))
        {
            CachedAttachment cached;
            try
            {
                cached = await ReadCacheFileAsync(path, cancellationToken);
            }
            catch (Exception e) when (e is CniException or System.Text.Json.JsonException or IOException or InvalidOperationException)
            {
                errors.Add($"{path}: {e.Message}");
                continue;
            }
            if (liveContainerIds.Contains(cached.Runtime.ContainerId))
            {
                valid.Add((cached.Config.Name, cached.Runtime.ContainerId, cached.Runtime.IfName));
                continue;
            }
            try
            {
                await DelAsync(cached.Runtime, onlyIfAdded: true, cancellationToken);
            }
            catch (CniException e)
            {
                errors.Add($"DEL of stale attachment {cached.Runtime.ContainerId}: {e.Message}");
            }
        }

        if (Current.Config is { SupportsStatusAndGc: true, DisableGc: false } config)
        {
            var attachments = new JsonArray([.. valid.Where(v => v.Network == config.Name).Select(v => (JsonNode)new JsonObject
            {
                ["containerID"] = v.ContainerId,
                ["ifname"] = v.IfName,
            })]);
            foreach (var plugin in config.Plugins)
            {
                var pluginConfig = PluginConfig(config, plugin, null, []);
                pluginConfig["cni.dev/valid-attachments"] = attachments.DeepClone();
                try
                {
                    await _runner.InvokeAsync("GC", (string)plugin["type"]!, pluginConfig, null, cancellationToken);
                }
                catch (CniException e)
                {
                    errors.Add(e.Message);
                }
            }
        }
        return errors;
    }

    /// <summary>The stdin of one plugin: its own config plus the list's name and version, prevResult and runtimeConfig.</summary>
    internal static JsonObject PluginConfig(CniNetworkConfig config, JsonObject plugin, JsonObject? previous, JsonObject capabilityArgs)
    {
        var result = (JsonObject)plugin.DeepClone();
        result["name"] = config.Name;
        result["cniVersion"] = config.CniVersion;
        if (previous is not null) result["prevResult"] = previous.DeepClone();
        if (plugin["capabilities"] is JsonObject capabilities)
        {
            var runtimeConfig = new JsonObject();
            foreach (var (capability, enabled) in capabilities)
            {
                if (enabled?.GetValueKind() == System.Text.Json.JsonValueKind.True && capabilityArgs[capability] is { } value)
                    runtimeConfig[capability] = value.DeepClone();
            }
            if (runtimeConfig.Count > 0) result["runtimeConfig"] = runtimeConfig;
        }
        return result;
    }

    private const string TemporarySuffix = ".tmp";

    private sealed record CachedAttachment(CniNetworkConfig Config, JsonObject Result, JsonObject CapabilityArgs, CniRuntimeConfig Runtime);

    private string CachePath(string network, CniRuntimeConfig runtime) =>
        Path.Combine(_options.CacheDir, $"{network}-{runtime.ContainerId}-{runtime.IfName}.json");

    private async Task CacheAsync(CniNetworkConfig config, CniRuntimeConfig runtime, JsonObject result, CancellationToken cancellationToken)
    {
        var entry = new JsonObject
        {
            ["kind"] = "cniCacheV1",
            ["containerId"] = runtime.ContainerId,
            ["ifName"] = runtime.IfName,
            ["netns"] = runtime.NetnsPath,
            ["args"] = new JsonObject([.. runtime.Args.Select(a => KeyValuePair.Create(a.Key, (JsonNode?)JsonValue.Create(a.Value)))]),
            ["config"] = new JsonObject
            {
                ["name"] = config.Name,
                ["cniVersion"] = config.CniVersion,
                ["disableCheck"] = config.DisableCheck,
                ["disableGC"] = config.DisableGc,
                ["plugins"] = new JsonArray([.. config.Plugins.Select(p => p.DeepClone())]),
            },
            ["sourcePath"] = config.SourcePath,
            ["capabilityArgs"] = runtime.CapabilityArgs.DeepClone(),
            ["result"] = result.DeepClone(),
        };
        var path = CachePath(config.Name, runtime);
        var temp = path + TemporarySuffix;
        await File.WriteAllTextAsync(temp, entry.ToJsonString(), Encoding.UTF8, cancellationToken);
        File.Move(temp, path, overwrite: true);
    }

    private async Task<CachedAttachment?> ReadCacheAsync(CniRuntimeConfig runtime, CancellationToken cancellationToken)
    {
        // The network name is part of the file name, and the config may have changed since: look for any.
        var match = Directory.EnumerateFiles(_options.CacheDir, $"*-{runtime.ContainerId}-{runtime.IfName}.json").FirstOrDefault();
        return match is null ? null : await ReadCacheFileAsync(match, cancellationToken);
    }

    private static async Task<CachedAttachment> ReadCacheFileAsync(string path, CancellationToken cancellationToken)
    {
        var entry = JsonNode.Parse(await File.ReadAllTextAsync(path, cancellationToken)) as JsonObject
                    ?? throw new CniException($"{path}: not a cache entry");
        var config = CniConfigLoader.Parse(entry["config"]!.ToJsonString(), (string?)entry["sourcePath"] ?? path);
        var capabilityArgs = entry["capabilityArgs"] as JsonObject ?? [];
        var runtime = new CniRuntimeConfig
        {
            ContainerId = (string?)entry["containerId"] ?? throw new CniException($"{path}: no containerId"),
            NetnsPath = (string?)entry["netns"] ?? "",
            IfName = (string?)entry["ifName"] ?? "eth0",
            Args = (entry["args"] as JsonObject)?.ToDictionary(a => a.Key, a => (string?)a.Value ?? "", StringComparer.Ordinal)
                   ?? new Dictionary<string, string>(),
            CapabilityArgs = capabilityArgs,
        };
        return new CachedAttachment(config, (JsonObject)entry["result"]!, capabilityArgs, runtime);
    }

    private string Signature()
    {
        var builder = new StringBuilder();
        foreach (var dir in _options.ConfDirs.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal))
            {
                var info = new FileInfo(file);
                builder.Append(file).Append('|').Append(info.LastWriteTimeUtc.Ticks).Append('|').Append(info.Length).Append('\n');
            }
        }
        return builder.ToString();
    }
}
