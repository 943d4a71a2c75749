using System.Buffers;
using System.Text;
using System.Text.Json;
using Berth.CriServer.Configuration;

namespace Berth.CriServer.Services;

/// <summary>The JSON documents of Status(verbose).info, written by hand to stay AOT-safe.</summary>
internal static class StatusInfo
{
    /// <summary>Readable output for operators: '+' and '&lt;' stay as they are (the values are data, never HTML).</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Whether spans are exported, and where to.</summary>
    public static string TracingJson(BerthConfig config) => Write(w =>
    {
        w.WriteBoolean("enabled", config.Tracing.Endpoint is not null);
        WriteTracing(w, config.Tracing);
    });

    private static void WriteTracing(Utf8JsonWriter w, TracingConfig tracing)
    {
        w.WriteString("endpoint", tracing.Endpoint?.ToString() ?? "");
        w.WriteString("protocol", ConfigLoader.OtlpProtocolName(tracing.Protocol));
        w.WriteNumber("sampling_ratio", tracing.SamplingRatio);
        w.WriteString("service_name", tracing.ServiceName);
    }

    /// <summary>The effective config, keyed as in config.toml so an operator can compare the two.</summary>
    public static string ConfigJson(BerthConfig config) => Write(w =>
    {
        w.WriteString("root", config.Root);
        w.WriteString("state", config.State);
        w.WriteString("log_level", ConfigLoader.LogLevelName(config.LogLevel));
        w.WriteString("log_format", config.LogFormat == LogFormat.Json ? "json" : "text");
        w.WriteStartObject("grpc");
        w.WriteString("socket", config.Grpc.Socket);
        w.WriteNumber("gid", config.Grpc.Gid);
        w.WriteString("shutdown_timeout", DurationParser.Format(config.Grpc.ShutdownTimeout));
        w.WriteEndObject();
        w.WriteStartObject("metrics");
        w.WriteString("address", config.Metrics.Address?.ToString() ?? "");
        w.WriteEndObject();
        w.WriteStartObject("tracing");
        WriteTracing(w, config.Tracing);
        w.WriteEndObject();
        w.WriteStartObject("cdi");
        w.WriteStartArray("spec_dirs");
        foreach (var dir in config.Cdi.SpecDirs) w.WriteStringValue(dir);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteStartObject("nri");
        w.WriteBoolean("enable", config.Nri.Enable);
        w.WriteString("socket_path", config.Nri.SocketPath);
        w.WriteBoolean("disable_connections", config.Nri.DisableConnections);
        w.WriteString("plugin_path", config.Nri.PluginPath);
        w.WriteString("plugin_config_path", config.Nri.PluginConfigPath);
        w.WriteString("plugin_registration_timeout", DurationParser.Format(config.Nri.PluginRegistrationTimeout));
        w.WriteString("plugin_request_timeout", DurationParser.Format(config.Nri.PluginRequestTimeout));
        w.WriteStartArray("required_plugins");
        foreach (var plugin in config.Nri.RequiredPlugins) w.WriteStringValue(plugin);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteStartObject("images");
        w.WriteString("platform", config.Images.Platform);
        w.WriteNumber("max_concurrent_downloads", config.Images.MaxConcurrentDownloads);
        w.WriteStartObject("registries");
        foreach (var (host, registry) in config.Images.Registries)
        {
            w.WriteStartObject(host);
            w.WriteStartArray("mirrors");
            foreach (var mirror in registry.Mirrors) w.WriteStringValue(mirror.ToString());
            w.WriteEndArray();
            w.WriteString("server", registry.Server?.ToString() ?? "");
            w.WriteBoolean("insecure", registry.Insecure);
            w.WriteString("ca_file", registry.CaFile ?? "");
            w.WriteBoolean("skip_verify", registry.SkipVerify);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    });

    public static string VersionJson() => Write(w =>
    {
        w.WriteString("runtimeName", BuildInfo.RuntimeName);
        w.WriteString("runtimeVersion", BuildInfo.Version);
        w.WriteString("runtimeApiVersion", BuildInfo.CriApiVersion);
    });

    /// <summary>
    /// The pulls under way, each layer's size and bytes fetched (what <c>berth pull</c> draws its progress from, as
    /// <c>ctr pull</c> reads containerd's ingests): <c>[{"image", "started", "layers": [{"digest", "size", "done"}]}]</c>.
    /// </summary>
    public static string PullsJson(IReadOnlyList<Berth.ImageStore.Images.PullProgressSnapshot> pulls)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartArray();
            foreach (var pull in pulls)
            {
                w.WriteStartObject();
                w.WriteString("image", pull.Image);
                w.WriteString("started", pull.Started);
                w.WriteStartArray("layers");
                foreach (var layer in pull.Layers)
                {
                    w.WriteStartObject();
                    w.WriteString("digest", layer.Digest);
                    w.WriteNumber("size", layer.Size);
                    w.WriteNumber("done", layer.Done);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// The CDI devices berthd can give and where each is defined, with the spec files it could not take and the devices
    /// in conflict (what <c>berth devices</c> shows): <c>{"specDirs", "devices": [{"name", "spec"}], "errors": {path: reason},
    /// "conflicts": {name: [paths]}}</c>.
    /// </summary>
    public static string CdiJson(Berth.Runtime.Cdi.CdiRegistryState state) => Write(w =>
    {
        w.WriteStartArray("specDirs");
        foreach (var dir in state.SpecDirs) w.WriteStringValue(dir);
        w.WriteEndArray();
        w.WriteStartArray("devices");
        foreach (var device in state.Devices)
        {
            w.WriteStartObject();
            w.WriteString("name", device.Name);
            w.WriteString("spec", device.SpecFile);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("errors");
        foreach (var (path, reason) in state.Errors.OrderBy(e => e.Key, StringComparer.Ordinal)) w.WriteString(path, reason);
        w.WriteEndObject();
        w.WriteStartObject("conflicts");
        foreach (var (name, files) in state.Conflicts.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            w.WriteStartArray(name);
            foreach (var file in files) w.WriteStringValue(file);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    });

    /// <summary>
    /// NRI (what <c>berth nri</c> shows): <c>{"enabled", "socket", "apiVersion", "plugins": [{"index", "name", "kind", "pid",
    /// "events"}], "required": [names]}</c>, plugins in the order they are called.
    /// </summary>
    public static string NriJson(BerthConfig config, IReadOnlyList<Berth.Nri.Adaptation.NriPluginInfo> plugins) => Write(w =>
    {
        w.WriteBoolean("enabled", config.Nri.Enable);
        w.WriteString("socket", config.Nri.Enable && !config.Nri.DisableConnections ? config.Nri.SocketPath : "");
        w.WriteString("apiVersion", Berth.Nri.Adaptation.NriOptions.ApiVersion);
        w.WriteStartArray("plugins");
        foreach (var plugin in plugins)
        {
            w.WriteStartObject();
            w.WriteString("index", plugin.Index);
            w.WriteString("name", plugin.Name);
            w.WriteString("kind", plugin.Kind);
            w.WriteNumber("pid", plugin.Pid);
            w.WriteStartArray("events");
            foreach (var e in plugin.Events) w.WriteStringValue(e);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("required");
        foreach (var name in config.Nri.RequiredPlugins) w.WriteStringValue(name);
        w.WriteEndArray();
    });

    private static string Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, StatusInfo.WriterOptions))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
