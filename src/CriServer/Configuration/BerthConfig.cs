using System.Net;

namespace Berth.CriServer.Configuration;

/// <summary>berthd's effective configuration: the TOML file, then command-line overrides, over defaults.</summary>
public sealed record BerthConfig
{
    public const string DefaultConfigPath = "/etc/berth/config.toml";

    /// <summary>Persistent state: blobs, snapshots, the metadata database.</summary>
    public string Root { get; init; } = "/var/lib/berth";

    /// <summary>Volatile state that dies with a reboot: runtime roots, pinned namespaces, shim sockets.</summary>
    public string State { get; init; } = "/run/berth";

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    public LogFormat LogFormat { get; init; } = LogFormat.Text;

    public GrpcConfig Grpc { get; init; } = new();

    public MetricsConfig Metrics { get; init; } = new();

    public TracingConfig Tracing { get; init; } = new();

    public StreamingConfig Streaming { get; init; } = new();

    public ImagesConfig Images { get; init; } = new();

    public CniConfig Cni { get; init; } = new();

    public CdiConfig Cdi { get; init; } = new();

    public NriConfig Nri { get; init; } = new();

    public RuntimeConfig Runtime { get; init; } = new();

    public StatsConfig Stats { get; init; } = new();
}

public sealed record StatsConfig
{
    /// <summary>
    /// How often the background collector samples CPU counters (the baseline of usage_nano_cores) and measures
    /// writable layers; stats RPCs read cgroups at call time but never walk a filesystem.
    /// </summary>
    public TimeSpan CollectPeriod { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Container events buffered per GetContainerEvents subscriber; one that falls further behind is dropped.</summary>
    public int EventBuffer { get; init; } = 1000;
}

public sealed record CniConfig
{
    public IReadOnlyList<string> ConfDirs { get; init; } = ["/etc/cni/net.d"];
    public IReadOnlyList<string> BinDirs { get; init; } = ["/opt/cni/bin", "/usr/lib/cni"];
}

/// <summary>Container Device Interface: where device specs are read from, a later directory's devices winning (CDI's order).</summary>
/// <summary>NRI, as containerd 2.x's <c>io.containerd.nri.v1.nri</c> plugin: on by default.</summary>
public sealed record NriConfig
{
    public bool Enable { get; init; } = true;

    public string SocketPath { get; init; } = "/var/run/nri/nri.sock";

    /// <summary>No external plugin connects: only the pre-registered ones run.</summary>
    public bool DisableConnections { get; init; }

    public string PluginPath { get; init; } = "/opt/nri/plugins";

    public string PluginConfigPath { get; init; } = "/etc/nri/conf.d";

    public TimeSpan PluginRegistrationTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan PluginRequestTimeout { get; init; } = TimeSpan.FromSeconds(2);

    public IReadOnlyList<string> RequiredPlugins { get; init; } = [];
}

public sealed record CdiConfig
{
    public IReadOnlyList<string> SpecDirs { get; init; } = ["/etc/cdi", "/var/run/cdi"];
}

public sealed record RuntimeConfig
{
    /// <summary>The handler a pod without a RuntimeClass gets.</summary>
    public string DefaultHandler { get; init; } = "runc";

    /// <summary>Handlers by RuntimeClass handler name; each names its OCI runtime binary.</summary>
    public IReadOnlyDictionary<string, RuntimeHandlerConfig> Handlers { get; init; } =
        new Dictionary<string, RuntimeHandlerConfig> { ["runc"] = new() };

    /// <summary>
    /// containerd's restrict_oom_score_adj: a container's oom_score_adj below berthd's own is raised to it, for
    /// hosts that refuse negative values (rootless, nested, restricted nodes).
    /// </summary>
    public bool RestrictOomScoreAdj { get; init; }

    /// <summary>"systemd" or "cgroupfs"; null picks systemd when systemd is PID 1 on cgroup v2, as kubelet expects there.</summary>
    public string? CgroupDriver { get; init; }

    /// <summary>CRI-O's pids_limit: pids.max of every container (0: none, so only the pod's limit from kubelet applies).</summary>
    public long PidsLimit { get; init; }

    /// <summary>berth-shim; by default the one beside berthd, as hack/publish and packages install them.</summary>
    public string ShimBinary { get; init; } = Path.Combine(AppContext.BaseDirectory, "berth-shim");
}

public sealed record RuntimeHandlerConfig
{
    public string Binary { get; init; } = "runc";
}

public sealed record ImagesConfig
{
    /// <summary>os/architecture[/variant] picked from multi-platform images.</summary>
    public string Platform { get; init; } = "linux/amd64";

    public int MaxConcurrentDownloads { get; init; } = 3;

    /// <summary>containerd's image_pull_progress_timeout: a layer download that brings no byte this long fails; zero disables.</summary>
    public TimeSpan PullProgressTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Images reported as pinned so kubelet's GC keeps them: names, or name prefixes ending in '*'.</summary>
    public IReadOnlyList<string> Pinned { get; init; } = [];

    /// <summary>Per-registry settings, keyed by registry host as it appears in image names.</summary>
    public IReadOnlyDictionary<string, RegistryConfig> Registries { get; init; } = new Dictionary<string, RegistryConfig>();

    /// <summary>containerd's config_path: a directory of <c>&lt;host&gt;/hosts.toml</c> files.</summary>
    public string ConfigPath { get; init; } = HostsDirectory.DefaultPath;

    /// <summary>What the hosts.toml files under <see cref="ConfigPath"/> say, read at load; never written back.</summary>
    public IReadOnlyDictionary<string, RegistryConfig> HostFiles { get; init; } = new Dictionary<string, RegistryConfig>();
}

public sealed record RegistryConfig
{
    public IReadOnlyList<Uri> Mirrors { get; init; } = [];
    public Uri? Server { get; init; }
    public bool Insecure { get; init; }
    public string? CaFile { get; init; }
    public bool SkipVerify { get; init; }
}

public enum LogFormat
{
    Text,
    Json,
}

public sealed record GrpcConfig
{
    public string Socket { get; init; } = "/run/berth/berth.sock";

    /// <summary>Group that owns the socket (mode 0660); 0 keeps it root-only.</summary>
    public int Gid { get; init; }

    /// <summary>How long in-flight RPCs may run on after SIGTERM before the host stops them.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Items per message of the Stream* RPCs (StreamContainers and the like).</summary>
    public int StreamChunkSize { get; init; } = 100;
}

public sealed record MetricsConfig
{
    /// <summary>Where <c>/metrics</c> is served; null when metrics are off (the default).</summary>
    public IPEndPoint? Address { get; init; }
}

/// <summary>OpenTelemetry traces over OTLP, as containerd's tracing plugins and CRI-O's [crio.tracing] export them.</summary>
public sealed record TracingConfig
{
    /// <summary>The OTLP collector; null when tracing is off (the default).</summary>
    public Uri? Endpoint { get; init; }

    public OtlpProtocol Protocol { get; init; } = OtlpProtocol.HttpProtobuf;

    /// <summary>The share of traces begun here that are recorded; a caller's (kubelet's) sampled flag is followed.</summary>
    public double SamplingRatio { get; init; } = 1.0;

    public string ServiceName { get; init; } = "berthd";
}

/// <summary>OTLP's two transports, named as OTEL_EXPORTER_OTLP_PROTOCOL names them.</summary>
public enum OtlpProtocol
{
    HttpProtobuf,
    Grpc,
}

public sealed record StreamingConfig
{
    /// <summary>Where exec, attach and port-forward URLs point. Port 0 picks a free port at each start.</summary>
    public IPEndPoint Address { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>PEM certificate and key for https URLs; both or neither.</summary>
    public string? TlsCertFile { get; init; }

    public string? TlsKeyFile { get; init; }

    /// <summary>How long a URL from Exec, Attach or PortForward stays usable.</summary>
    public TimeSpan TokenLifetime { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>A streaming session with no traffic for this long is closed.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(4);

    /// <summary>URLs handed out and not yet used; more requests fail with ResourceExhausted.</summary>
    public int MaxOutstanding { get; init; } = 1000;

    /// <summary>Streaming connections served at once.</summary>
    public int MaxSessions { get; init; } = 1000;
}
