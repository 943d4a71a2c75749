namespace Berth.Nri.Adaptation;

/// <summary>How the runtime side of NRI runs: containerd 2.x's <c>io.containerd.nri.v1.nri</c> settings, under Berth's <c>[nri]</c>.</summary>
public sealed record NriOptions
{
    /// <summary>The NRI API version Berth speaks: containerd/nri v0.12.2's api.proto.</summary>
    public const string ApiVersion = "v0.12.2";

    public const string DefaultSocketPath = "/var/run/nri/nri.sock";

    /// <summary>External plugins connect here; empty refuses external plugins.</summary>
    public string SocketPath { get; init; } = DefaultSocketPath;

    /// <summary>Pre-registered plugins: executables named <c>NN-name</c>, started by berthd.</summary>
    public string PluginPath { get; init; } = "/opt/nri/plugins";

    /// <summary>Their configuration: <c>NN-name.conf</c>, else <c>name.conf</c>.</summary>
    public string PluginConfigPath { get; init; } = "/etc/nri/conf.d";

    /// <summary>Where pre-registered plugins' standard output and error go, one file each.</summary>
    public string? PluginLogDirectory { get; init; }

    public TimeSpan RegistrationTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Plugins (by name, or <c>NN-name</c>) without which no pod or container is created.</summary>
    public IReadOnlyList<string> RequiredPlugins { get; init; } = [];

    public string RuntimeName { get; init; } = "berth";

    public string RuntimeVersion { get; init; } = "";
}
