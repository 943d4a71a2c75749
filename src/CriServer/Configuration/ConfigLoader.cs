using System.Net;

namespace Berth.CriServer.Configuration;

/// <summary>Builds the effective <see cref="BerthConfig"/> from the TOML file and the command line.</summary>
public static class ConfigLoader
{
    internal static readonly IReadOnlyDictionary<string, LogLevel> LogLevels = new Dictionary<string, LogLevel>(StringComparer.Ordinal)
    {
        ["trace"] = LogLevel.Trace,
        ["debug"] = LogLevel.Debug,
        ["info"] = LogLevel.Information,
        ["warn"] = LogLevel.Warning,
        ["error"] = LogLevel.Error,
    };

    public static string LogLevelName(LogLevel level) => LogLevels.First(pair => pair.Value == level).Key;

    private static readonly IReadOnlyDictionary<string, LogFormat> LogFormats = new Dictionary<string, LogFormat>(StringComparer.Ordinal)
    {
        ["text"] = LogFormat.Text,
        ["json"] = LogFormat.Json,
    };

    /// <summary>
    /// Loads the config named on the command line, or the default path when it exists
    /// (a node without a config file runs on defaults, as containerd does).
    /// </summary>
    public static BerthConfig Load(CommandLineOptions options)
    {
        var path = options.ConfigPath ?? BerthConfig.DefaultConfigPath;
        BerthConfig config;
        if (File.Exists(path))
        {
            config = ParseFile(path, new BerthConfig(), dropIn: false);
        }
        else if (options.ConfigPath is not null)
        {
            throw new ConfigException($"{path}: the config file does not exist");
        }
        else
        {
            config = new BerthConfig();
        }
        // CRI-O's crio.conf.d: every *.toml beside the main file's config.d, in lexical order, over what came before.
        var dropIns = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, DropInDirectory);
        if (Directory.Exists(dropIns))
        {
            foreach (var file in Directory.EnumerateFiles(dropIns, "*.toml").Order(StringComparer.Ordinal))
                config = ParseFile(file, config, dropIn: true);
        }

        return WithHostFiles(Validate(ApplyOverrides(config, options)));
    }

    /// <summary>Reads images.config_path's hosts.toml files; a host set there and in images.registries is a conflict.</summary>
    private static BerthConfig WithHostFiles(BerthConfig config)
    {
        if (!Path.IsPathFullyQualified(config.Images.ConfigPath))
            throw new ConfigException($"images.config_path: '{config.Images.ConfigPath}' must be an absolute path");
        var hosts = HostsDirectory.Load(config.Images.ConfigPath);
        foreach (var host in hosts.Keys)
        {
            if (config.Images.Registries.ContainsKey(host))
                throw new ConfigException($"images.registries.\"{host}\" and {config.Images.ConfigPath}/{host}/hosts.toml both configure {host}: keep one");
        }
        return config with { Images = config.Images with { HostFiles = hosts } };
    }

    /// <summary>The drop-in directory beside the main config file (/etc/berth/config.d).</summary>
    public const string DropInDirectory = "config.d";

    private static BerthConfig ParseFile(string path, BerthConfig onto, bool dropIn)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{path}: cannot read the config file: {e.Message}");
        }
        try
        {
            return Parse(text, onto, mergeMaps: dropIn);
        }
        catch (ConfigException e)
        {
            throw new ConfigException($"{path}: {e.Message}");
        }
    }

    /// <summary>Parses TOML text onto the defaults; unknown keys and bad values throw with the key's name.</summary>
    public static BerthConfig Parse(string toml) => Parse(toml, new BerthConfig(), mergeMaps: false);

    /// <summary>
    /// Parses TOML text onto <paramref name="defaults"/>: a key the text sets replaces the one there. Maps keyed by
    /// name (runtime handlers, registries) are replaced whole by a main file and merged by name by a drop-in, so a
    /// drop-in can add one handler or one registry.
    /// </summary>
    public static BerthConfig Parse(string toml, BerthConfig defaults, bool mergeMaps)
    {
        var root = TomlSection.Parse(toml);
        var config = defaults with
        {
            Root = root.String("root") ?? defaults.Root,
            State = root.String("state") ?? defaults.State,
            LogLevel = root.Enum("log_level", LogLevels) ?? defaults.LogLevel,
            LogFormat = root.Enum("log_format", LogFormats) ?? defaults.LogFormat,
            Grpc = ParseGrpc(root.Section("grpc"), defaults.Grpc),
            Metrics = ParseMetrics(root.Section("metrics"), defaults.Metrics),
            Tracing = ParseTracing(root.Section("tracing"), defaults.Tracing),
            Streaming = ParseStreaming(root.Section("streaming"), defaults.Streaming),
            Images = ParseImages(root.Section("images"), defaults.Images, mergeMaps),
            Cni = ParseCni(root.Section("cni"), defaults.Cni),
            Cdi = ParseCdi(root.Section("cdi"), defaults.Cdi),
            Nri = ParseNri(root.Section("nri"), defaults.Nri),
            Runtime = ParseRuntime(root.Section("runtime"), defaults.Runtime, mergeMaps),
            Stats = ParseStats(root.Section("stats"), defaults.Stats),
        };
        root.RejectUnknownKeys();
        return config;
    }

    private static GrpcConfig ParseGrpc(TomlSection? section, GrpcConfig defaults)
    {
        if (section is null) return defaults;
        var grpc = defaults with
        {
            Socket = section.String("socket") ?? defaults.Socket,
            Gid = (int?)section.Integer("gid", 0, int.MaxValue) ?? defaults.Gid,
            ShutdownTimeout = section.Duration("shutdown_timeout") ?? defaults.ShutdownTimeout,
            StreamChunkSize = (int?)section.Integer("stream_chunk_size", 1, 100_000) ?? defaults.StreamChunkSize,
        };
        section.RejectUnknownKeys();
        return grpc;
    }

    private static StatsConfig ParseStats(TomlSection? section, StatsConfig defaults)
    {
        if (section is null) return defaults;
        var stats = defaults with
        {
            CollectPeriod = section.Duration("collect_period") ?? defaults.CollectPeriod,
            EventBuffer = (int?)section.Integer("event_buffer", 1, 1_000_000) ?? defaults.EventBuffer,
        };
        section.RejectUnknownKeys();
        if (stats.CollectPeriod < TimeSpan.FromMilliseconds(100))
            throw new ConfigException($"stats.collect_period: {stats.CollectPeriod} is below the 100ms minimum");
        return stats;
    }

    private static MetricsConfig ParseMetrics(TomlSection? section, MetricsConfig defaults)
    {
        if (section is null) return defaults;
        var address = section.String("address");
        section.RejectUnknownKeys();
        if (string.IsNullOrEmpty(address)) return defaults;
        return IPEndPoint.TryParse(address, out var endpoint) && endpoint.Port != 0
            ? defaults with { Address = endpoint }
            : throw new ConfigException($"metrics.address: '{address}' is not an address with a port, such as \"127.0.0.1:9400\"");
    }

    private static readonly Dictionary<string, OtlpProtocol> OtlpProtocols = new()
    {
        ["http/protobuf"] = OtlpProtocol.HttpProtobuf,
        ["grpc"] = OtlpProtocol.Grpc,
    };

    internal static string OtlpProtocolName(OtlpProtocol protocol) => OtlpProtocols.First(p => p.Value == protocol).Key;

    private static TracingConfig ParseTracing(TomlSection? section, TracingConfig defaults)
    {
        if (section is null) return defaults;
        var endpoint = section.String("endpoint");
        var tracing = defaults with
        {
            Endpoint = endpoint is null ? defaults.Endpoint
                : endpoint.Length == 0 ? null
                : TomlSection.ParseEndpoint("tracing.endpoint", endpoint),
            Protocol = section.Enum("protocol", OtlpProtocols) ?? defaults.Protocol,
            SamplingRatio = section.Fraction("sampling_ratio") ?? defaults.SamplingRatio,
            ServiceName = section.String("service_name") ?? defaults.ServiceName,
        };
        section.RejectUnknownKeys();
        if (tracing.ServiceName.Length == 0) throw new ConfigException("tracing.service_name: must not be empty");
        return tracing;
    }

    private static StreamingConfig ParseStreaming(TomlSection? section, StreamingConfig defaults)
    {
        if (section is null) return defaults;
        var address = section.String("address");
        var streaming = defaults with
        {
            Address = address is null ? defaults.Address
                : IPEndPoint.TryParse(address, out var endpoint) && address.Contains(':', StringComparison.Ordinal)
                    ? endpoint
                    : throw new ConfigException($"streaming.address: '{address}' is not an address with a port, such as \"127.0.0.1:0\""),
            TlsCertFile = section.String("tls_cert_file") ?? defaults.TlsCertFile,
            TlsKeyFile = section.String("tls_key_file") ?? defaults.TlsKeyFile,
            TokenLifetime = section.Duration("token_lifetime") ?? defaults.TokenLifetime,
            IdleTimeout = section.Duration("idle_timeout") ?? defaults.IdleTimeout,
            MaxOutstanding = (int?)section.Integer("max_outstanding", 1, 100_000) ?? defaults.MaxOutstanding,
            MaxSessions = (int?)section.Integer("max_sessions", 1, 100_000) ?? defaults.MaxSessions,
        };
        section.RejectUnknownKeys();
        if ((streaming.TlsCertFile is null) != (streaming.TlsKeyFile is null))
            throw new ConfigException("streaming.tls_cert_file and streaming.tls_key_file go together: set both or neither");
        foreach (var (key, file) in new[] { ("tls_cert_file", streaming.TlsCertFile), ("tls_key_file", streaming.TlsKeyFile) })
            if (file is not null && !File.Exists(file)) throw new ConfigException($"streaming.{key}: '{file}' does not exist");
        return streaming;
    }

    private static ImagesConfig ParseImages(TomlSection? section, ImagesConfig defaults, bool mergeMaps)
    {
        if (section is null) return defaults;
        var platform = section.String("platform") ?? defaults.Platform;
        var parts = platform.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0))
            throw new ConfigException($"images.platform: '{platform}' is not os/architecture[/variant], such as \"linux/amd64\"");

        var registries = new Dictionary<string, RegistryConfig>(StringComparer.Ordinal);
        var registriesSection = section.Section("registries");
        if (mergeMaps || registriesSection is null)
        {
            foreach (var (host, registry) in defaults.Registries) registries[host] = registry;
        }
        foreach (var (host, registry) in registriesSection?.Tables() ?? [])
        {
            var mirrors = (registry.StringArray("mirrors") ?? []).Select(m => TomlSection.ParseEndpoint($"images.registries.\"{host}\".mirrors", m)).ToList();
            var server = registry.String("server") is { Length: > 0 } serverText ? TomlSection.ParseEndpoint($"images.registries.\"{host}\".server", serverText) : null;
            var caFile = registry.String("ca_file");
            if (caFile is { Length: > 0 } && !Path.IsPathFullyQualified(caFile))
                throw new ConfigException($"images.registries.\"{host}\".ca_file: '{caFile}' must be an absolute path");
            registries[host] = new RegistryConfig
            {
                Mirrors = mirrors,
                Server = server,
                Insecure = registry.Boolean("insecure") ?? false,
                CaFile = string.IsNullOrEmpty(caFile) ? null : caFile,
                SkipVerify = registry.Boolean("skip_verify") ?? false,
            };
            registry.RejectUnknownKeys();
        }

        var images = defaults with
        {
            Platform = platform,
            MaxConcurrentDownloads = (int?)section.Integer("max_concurrent_downloads", 1, 64) ?? defaults.MaxConcurrentDownloads,
            PullProgressTimeout = section.Duration("pull_progress_timeout") ?? defaults.PullProgressTimeout,
            Registries = registries,
            Pinned = section.StringArray("pinned") ?? defaults.Pinned,
            ConfigPath = section.String("config_path") ?? defaults.ConfigPath,
        };
        try
        {
            _ = new Berth.ImageStore.References.PinnedImages(images.Pinned);
        }
        catch (ArgumentException e)
        {
            throw new ConfigException($"images.pinned: {e.Message}");
        }
        section.RejectUnknownKeys();
        return images;
    }

    private static CniConfig ParseCni(TomlSection? section, CniConfig defaults)
    {
        if (section is null) return defaults;
        var cni = defaults with
        {
            ConfDirs = section.StringArray("conf_dirs") ?? defaults.ConfDirs,
            BinDirs = section.StringArray("bin_dirs") ?? defaults.BinDirs,
        };
        section.RejectUnknownKeys();
        foreach (var dir in cni.ConfDirs.Concat(cni.BinDirs))
        {
            if (!Path.IsPathFullyQualified(dir)) throw new ConfigException($"cni: '{dir}' must be an absolute path");
        }
        return cni;
    }

    private static NriConfig ParseNri(TomlSection? section, NriConfig defaults)
    {
        if (section is null) return defaults;
        var nri = defaults with
        {
            Enable = section.Boolean("enable") ?? defaults.Enable,
            SocketPath = section.String("socket_path") ?? defaults.SocketPath,
            DisableConnections = section.Boolean("disable_connections") ?? defaults.DisableConnections,
            PluginPath = section.String("plugin_path") ?? defaults.PluginPath,
            PluginConfigPath = section.String("plugin_config_path") ?? defaults.PluginConfigPath,
            PluginRegistrationTimeout = section.Duration("plugin_registration_timeout") ?? defaults.PluginRegistrationTimeout,
            PluginRequestTimeout = section.Duration("plugin_request_timeout") ?? defaults.PluginRequestTimeout,
            RequiredPlugins = section.StringArray("required_plugins") ?? defaults.RequiredPlugins,
        };
        section.RejectUnknownKeys();
        foreach (var (key, path) in new[] { ("socket_path", nri.SocketPath), ("plugin_path", nri.PluginPath), ("plugin_config_path", nri.PluginConfigPath) })
        {
            if (!Path.IsPathFullyQualified(path)) throw new ConfigException($"nri.{key}: '{path}' must be an absolute path");
        }
        if (nri.SocketPath.Length > 107) throw new ConfigException($"nri.socket_path: '{nri.SocketPath}' is longer than the 107 bytes of a unix socket path");
        foreach (var (key, timeout) in new[] { ("plugin_registration_timeout", nri.PluginRegistrationTimeout), ("plugin_request_timeout", nri.PluginRequestTimeout) })
        {
            if (timeout <= TimeSpan.Zero) throw new ConfigException($"nri.{key}: must be positive");
        }
        return nri;
    }

    private static CdiConfig ParseCdi(TomlSection? section, CdiConfig defaults)
    {
        if (section is null) return defaults;
        var cdi = defaults with { SpecDirs = section.StringArray("spec_dirs") ?? defaults.SpecDirs };
        section.RejectUnknownKeys();
        foreach (var dir in cdi.SpecDirs)
        {
            if (!Path.IsPathFullyQualified(dir)) throw new ConfigException($"cdi.spec_dirs: '{dir}' must be an absolute path");
        }
        return cdi;
    }

    private static RuntimeConfig ParseRuntime(TomlSection? section, RuntimeConfig defaults, bool mergeMaps)
    {
        if (section is null) return defaults;
        var handlers = new Dictionary<string, RuntimeHandlerConfig>(StringComparer.Ordinal);
        if (mergeMaps)
        {
            foreach (var (name, handler) in defaults.Handlers) handlers[name] = handler;
        }
        foreach (var (name, handler) in section.Section("handlers")?.Tables() ?? [])
        {
            handlers[name] = new RuntimeHandlerConfig { Binary = handler.String("binary") ?? "runc" };
            handler.RejectUnknownKeys();
        }
        var runtime = defaults with
        {
            DefaultHandler = section.String("default_handler") ?? defaults.DefaultHandler,
            Handlers = handlers.Count > 0 ? handlers : defaults.Handlers,
            ShimBinary = section.String("shim_binary") ?? defaults.ShimBinary,
            RestrictOomScoreAdj = section.Boolean("restrict_oom_score_adj") ?? defaults.RestrictOomScoreAdj,
            CgroupDriver = section.String("cgroup_driver") ?? defaults.CgroupDriver,
            PidsLimit = section.Integer("pids_limit", 0, int.MaxValue) ?? defaults.PidsLimit,
        };
        if (runtime.CgroupDriver is not (null or "systemd" or "cgroupfs"))
            throw new ConfigException($"runtime.cgroup_driver: '{runtime.CgroupDriver}' is neither \"systemd\" nor \"cgroupfs\"");
        if (!Path.IsPathFullyQualified(runtime.ShimBinary))
            throw new ConfigException($"runtime.shim_binary: '{runtime.ShimBinary}' must be an absolute path");
        section.RejectUnknownKeys();
        if (!runtime.Handlers.ContainsKey(runtime.DefaultHandler))
            throw new ConfigException($"runtime.default_handler: '{runtime.DefaultHandler}' is not one of runtime.handlers ({string.Join(", ", runtime.Handlers.Keys)})");
        return runtime;
    }

    private static BerthConfig ApplyOverrides(BerthConfig config, CommandLineOptions options) => config with
    {
        Root = options.Root ?? config.Root,
        State = options.State ?? config.State,
        LogLevel = options.LogLevel ?? config.LogLevel,
        Grpc = options.Socket is null ? config.Grpc : config.Grpc with { Socket = options.Socket },
    };

    public const int MaxStateLength = 27;

    private static BerthConfig Validate(BerthConfig config)
    {
        RequireAbsolute("root", config.Root);
        RequireAbsolute("state", config.State);
        RequireAbsolute("grpc.socket", config.Grpc.Socket);
        // sun_path holds 108 bytes including the terminating NUL.
        if (System.Text.Encoding.UTF8.GetByteCount(config.Grpc.Socket) > 107)
            throw new ConfigException($"grpc.socket: '{config.Grpc.Socket}' is longer than the 107 bytes a unix socket path may have");
        // Each container's shim serves sockets at <state>/c/<64-hex id>/control.sock: 80 bytes after the state dir.
        if (System.Text.Encoding.UTF8.GetByteCount(config.State.TrimEnd('/')) > MaxStateLength)
            throw new ConfigException($"state: '{config.State}' is longer than {MaxStateLength} bytes, which the shims' unix socket paths below it need");
        return config;
    }

    private static void RequireAbsolute(string key, string path)
    {
        if (!Path.IsPathFullyQualified(path))
            throw new ConfigException($"{key}: '{path}' must be an absolute path");
    }
}
