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
public sealed class CniNetwork
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

    /// <summary>Asks every plugin whether the attachment is still as ADD left it (CNI 0.4.0 and later).</summary>
    public async Task CheckAsync(CniRuntimeConfig runtime, CancellationToken cancellationToken)
    {
        var cached = await ReadCacheAsync(runtime, cancellationToken) ?? throw new CniException($"no cached ADD for {runtime.ContainerId}");
        if (cached.Config.DisableCheck) return;
        foreach (var plugin in cached.Config.Plugins)
        {
            var pluginConfig = PluginConfig(cached.Config, plugin, cached.Result, cached.CapabilityArgs);
            await _runner.InvokeAsync("CHECK", (string)plugin["type"]!, pluginConfig, runtime, cancellationToken);
        }
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

    private sealed record CachedAttachment(CniNetworkConfig Config, JsonObject Result, JsonObject CapabilityArgs);

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
            ["config"] = new JsonObject
            {
                ["name"] = config.Name,
                ["cniVersion"] = config.CniVersion,
                ["disableCheck"] = config.DisableCheck,
                ["plugins"] = new JsonArray([.. config.Plugins.Select(p => p.DeepClone())]),
            },
            ["sourcePath"] = config.SourcePath,
            ["capabilityArgs"] = runtime.CapabilityArgs.DeepClone(),
            ["result"] = result.DeepClone(),
        };
        var path = CachePath(config.Name, runtime);
        var temp = path + ".tmp";
        await File.WriteAllTextAsync(temp, entry.ToJsonString(), Encoding.UTF8, cancellationToken);
        File.Move(temp, path, overwrite: true);
    }

    private async Task<CachedAttachment?> ReadCacheAsync(CniRuntimeConfig runtime, CancellationToken cancellationToken)
    {
        // The network name is part of the file name, and the config may have changed since: look for any.
        var match = Directory.EnumerateFiles(_options.CacheDir, $"*-{runtime.ContainerId}-{runtime.IfName}.json").FirstOrDefault();
        if (match is null) return null;
        var entry = JsonNode.Parse(await File.ReadAllTextAsync(match, cancellationToken)) as JsonObject
                    ?? throw new CniException($"{match}: not a cache entry");
        var config = CniConfigLoader.Parse(entry["config"]!.ToJsonString(), (string?)entry["sourcePath"] ?? match);
        return new CachedAttachment(config, (JsonObject)entry["result"]!, entry["capabilityArgs"] as JsonObject ?? []);
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
