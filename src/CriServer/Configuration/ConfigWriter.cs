using System.Globalization;
using System.Text;

namespace Berth.CriServer.Configuration;

/// <summary>
/// Writes a <see cref="BerthConfig"/> back as TOML that <see cref="ConfigLoader.Parse(string)"/> reads to the same config:
/// <c>berthd config default</c> (the defaults, a comment per key) and <c>berthd config dump</c> (the effective config).
/// A key that is unset has no TOML value, so it is written commented out with an example.
/// </summary>
public static class ConfigWriter
{
    public static string Write(BerthConfig config, bool comments)
    {
        var toml = new TomlText(comments);
        toml.Key("root", Quote(config.Root), "persistent state: blobs, snapshots, metadata (--root)");
        toml.Key("state", Quote(config.State), $"volatile state: runtime roots, pinned namespaces, bundles, shim sockets (--state); at most {ConfigLoader.MaxStateLength} bytes");
        toml.Key("log_level", Quote(ConfigLoader.LogLevelName(config.LogLevel)), "trace, debug, info, warn or error (--log-level)");
        toml.Key("log_format", Quote(config.LogFormat == LogFormat.Json ? "json" : "text"), "text or json");

        toml.Table("grpc");
        toml.Key("socket", Quote(config.Grpc.Socket), "the CRI socket, RuntimeService and ImageService both (--socket); mode 0660");
        toml.Key("gid", Int(config.Grpc.Gid), "group that owns the socket; 0 keeps it root's");
        toml.Key("shutdown_timeout", Duration(config.Grpc.ShutdownTimeout), "on SIGTERM, how long in-flight RPCs may finish");
        toml.Key("stream_chunk_size", Int(config.Grpc.StreamChunkSize), "items per message of the Stream* RPCs");

        toml.Table("stats");
        toml.Key("collect_period", Duration(config.Stats.CollectPeriod), "how often CPU counters are sampled and writable layers measured (at least 100ms)");
        toml.Key("event_buffer", Int(config.Stats.EventBuffer), "container events buffered per GetContainerEvents subscriber");

        toml.Table("metrics");
        toml.Optional("address", config.Metrics.Address is { } metrics ? Quote(metrics.ToString()) : null, "\"127.0.0.1:9400\"", "host:port serving Prometheus /metrics; unset is off");

        toml.Table("tracing");
        toml.Optional("endpoint", config.Tracing.Endpoint is { } tracing ? Quote(tracing.ToString()) : null, "\"http://127.0.0.1:4318\"", "OTLP collector that RPC and phase spans are sent to; unset is off");
        toml.Key("protocol", Quote(ConfigLoader.OtlpProtocolName(config.Tracing.Protocol)), "http/protobuf (port 4318, /v1/traces) or grpc (port 4317)");
        toml.Key("sampling_ratio", config.Tracing.SamplingRatio.ToString("0.0##", CultureInfo.InvariantCulture), "share of traces begun here that are kept; a caller's sampled flag is followed");
        toml.Key("service_name", Quote(config.Tracing.ServiceName), "service.name of the spans");

        toml.Table("streaming");
        toml.Key("address", Quote(config.Streaming.Address.ToString()), "where Exec, Attach and PortForward URLs point; port 0 takes a free one");
        toml.Optional("tls_cert_file", config.Streaming.TlsCertFile is { } cert ? Quote(cert) : null, "\"/etc/berth/streaming.crt\"", "PEM certificate for https URLs, with tls_key_file");
        toml.Optional("tls_key_file", config.Streaming.TlsKeyFile is { } key ? Quote(key) : null, "\"/etc/berth/streaming.key\"", "PEM key for https URLs, with tls_cert_file");
        toml.Key("token_lifetime", Duration(config.Streaming.TokenLifetime), "how long a URL stays usable; each works once");
        toml.Key("idle_timeout", Duration(config.Streaming.IdleTimeout), "a streaming session with no traffic this long is closed");
        toml.Key("max_outstanding", Int(config.Streaming.MaxOutstanding), "URLs issued and not yet used; more are ResourceExhausted");
        toml.Key("max_sessions", Int(config.Streaming.MaxSessions), "streaming connections served at once");

        toml.Table("cni");
        toml.Key("conf_dirs", Strings(config.Cni.ConfDirs), "where the network config is found (the lexically first valid one)");
        toml.Key("bin_dirs", Strings(config.Cni.BinDirs), "where CNI plugins are found");

        toml.Table("cdi");
        toml.Key("spec_dirs", Strings(config.Cdi.SpecDirs), "where CDI device specs are read from, watched; a later directory's device wins");

        toml.Table("nri");
        toml.Key("enable", Bool(config.Nri.Enable), "NRI plugins (containerd/nri), on as in containerd 2.x");
        toml.Key("socket_path", Quote(config.Nri.SocketPath), "where external NRI plugins connect");
        toml.Key("disable_connections", Bool(config.Nri.DisableConnections), "refuse external plugins; only pre-registered ones run");
        toml.Key("plugin_path", Quote(config.Nri.PluginPath), "pre-registered plugins: executables named NN-name, started by berthd");
        toml.Key("plugin_config_path", Quote(config.Nri.PluginConfigPath), "their configuration: NN-name.conf, else name.conf");
        toml.Key("plugin_registration_timeout", Duration(config.Nri.PluginRegistrationTimeout), "a plugin that has not registered and configured by then is dropped");
        toml.Key("plugin_request_timeout", Duration(config.Nri.PluginRequestTimeout), "a plugin that does not answer an event by then is dropped");
        toml.Key("required_plugins", Strings(config.Nri.RequiredPlugins), "plugins (name or NN-name) without which no pod or container is created");

        toml.Table("runtime");
        toml.Key("default_handler", Quote(config.Runtime.DefaultHandler), "the handler of pods without a RuntimeClass");
        toml.Optional("cgroup_driver", config.Runtime.CgroupDriver is { } driver ? Quote(driver) : null, "\"systemd\"",
            "\"systemd\" or \"cgroupfs\"; unset is systemd when systemd is PID 1 on cgroup v2, else cgroupfs");
        toml.Key("pids_limit", Int(config.Runtime.PidsLimit), "pids.max of every container; 0 sets none");
        toml.Key("restrict_oom_score_adj", Bool(config.Runtime.RestrictOomScoreAdj), "raise oom_score_adj below berthd's own to it, for hosts that refuse negative values");
        toml.Key("shim_binary", Quote(config.Runtime.ShimBinary), "berth-shim: one per container, and the infra of pods that share a PID namespace");
        foreach (var (name, handler) in config.Runtime.Handlers.OrderBy(h => h.Key, StringComparer.Ordinal))
        {
            toml.Table($"runtime.handlers.{Name(name)}");
            toml.Key("binary", Quote(handler.Binary), "the OCI runtime (runc, crun) of this RuntimeClass handler");
        }

        toml.Table("images");
        toml.Key("platform", Quote(config.Images.Platform), "os/architecture[/variant] chosen from multi-platform images");
        toml.Key("max_concurrent_downloads", Int(config.Images.MaxConcurrentDownloads), "layers fetched and unpacked at once per pull (1-64)");
        toml.Key("pull_progress_timeout", Duration(config.Images.PullProgressTimeout), "a layer download that brings no byte this long fails; \"0s\" disables");
        toml.Key("pinned", Strings(config.Images.Pinned), "images kubelet's GC must keep: names, or prefixes ending in '*'");
        toml.Key("config_path", Quote(config.Images.ConfigPath), "containerd-style <host>/hosts.toml files (server, [host.\"URL\"] capabilities, ca, skip_verify; _default for any host)");
        if (config.Images.Registries.Count == 0 && comments)
        {
            toml.Comment("""[images.registries."docker.io"]: mirrors = ["https://mirror.example"], server = "https://...", insecure, ca_file, skip_verify""");
        }
        foreach (var (host, registry) in config.Images.Registries.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            toml.Table($"images.registries.{Name(host)}");
            toml.Key("mirrors", Strings(registry.Mirrors.Select(m => m.OriginalString)), "endpoints tried in order before the registry itself");
            toml.Optional("server", registry.Server is { } server ? Quote(server.OriginalString) : null, "\"https://registry.example\"", "replaces the registry's own endpoint");
            toml.Key("insecure", Bool(registry.Insecure), "plain HTTP to the host");
            toml.Optional("ca_file", registry.CaFile is { } ca ? Quote(ca) : null, "\"/etc/berth/registry-ca.pem\"", "a CA bundle the host's certificate must chain to");
            toml.Key("skip_verify", Bool(registry.SkipVerify), "TLS without verifying the host's certificate");
        }
        return toml.ToString();
    }

    private static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Bool(bool value) => value ? "true" : "false";

    private static string Duration(TimeSpan value) => Quote(DurationParser.Format(value));

    private static string Strings(IEnumerable<string> values) => "[" + string.Join(", ", values.Select(Quote)) + "]";

    /// <summary>A bare key when TOML allows one, else a quoted one (a registry host with dots, a handler with a slash).</summary>
    private static string Name(string key) =>
        key.Length > 0 && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_') ? key : Quote(key);

    /// <summary>A TOML basic string.</summary>
    private static string Quote(string value)
    {
        var text = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            _ = c switch
            {
                '"' => text.Append("\\\""),
                '\\' => text.Append("\\\\"),
                '\n' => text.Append("\\n"),
                '\t' => text.Append("\\t"),
                _ when char.IsControl(c) => text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}"),
                _ => text.Append(c),
            };
        }
        return text.Append('"').ToString();
    }

    private sealed class TomlText(bool comments)
    {
        private readonly StringBuilder _text = new();

        public void Table(string name) => _text.Append('\n').Append('[').Append(name).Append("]\n");

        public void Key(string key, string value, string comment)
        {
            Comment(comment);
            _text.Append(key).Append(" = ").Append(value).Append('\n');
        }

        /// <summary>A key that may be unset: then, with comments, an example of it commented out; else nothing.</summary>
        public void Optional(string key, string? value, string example, string comment)
        {
            if (value is not null)
            {
                Key(key, value, comment);
                return;
            }
            if (!comments) return;
            Comment(comment);
            _text.Append("# ").Append(key).Append(" = ").Append(example).Append('\n');
        }

        public void Comment(string comment)
        {
            if (comments) _text.Append("# ").Append(comment).Append('\n');
        }

        public override string ToString() => _text.ToString().TrimStart('\n');
    }
}
