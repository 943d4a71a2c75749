using System.Net;
using Berth.CriServer.Configuration;
using Microsoft.Extensions.Logging;

namespace Berth.CriServer.Tests;

public sealed class ConfigLoaderTests
{
    [Fact]
    public void Empty_file_gives_the_documented_defaults()
    {
        var config = ConfigLoader.Parse("");

        Assert.Equal("/var/lib/berth", config.Root);
        Assert.Equal("/run/berth", config.State);
        Assert.Equal("/run/berth/berth.sock", config.Grpc.Socket);
        Assert.Equal(0, config.Grpc.Gid);
        Assert.Equal(TimeSpan.FromSeconds(10), config.Grpc.ShutdownTimeout);
        Assert.Equal(LogLevel.Information, config.LogLevel);
        Assert.Equal(LogFormat.Text, config.LogFormat);
        Assert.Null(config.Metrics.Address);
        Assert.Equal("linux/amd64", config.Images.Platform);
        Assert.Equal(3, config.Images.MaxConcurrentDownloads);
        Assert.Empty(config.Images.Registries);
        Assert.False(config.Runtime.RestrictOomScoreAdj);
        Assert.Equal(["/etc/cdi", "/var/run/cdi"], config.Cdi.SpecDirs);
    }

    [Fact]
    public void Tracing_is_off_by_default_and_takes_containerds_keys()
    {
        var defaults = ConfigLoader.Parse("").Tracing;
        Assert.Equal((null, OtlpProtocol.HttpProtobuf, 1.0, "berthd"), (defaults.Endpoint, defaults.Protocol, defaults.SamplingRatio, defaults.ServiceName));

        var tracing = ConfigLoader.Parse("""
            [tracing]
            endpoint = "http://127.0.0.1:4317"
            protocol = "grpc"
            sampling_ratio = 0
            service_name = "berthd-node-7"
            """).Tracing;
        Assert.Equal((new Uri("http://127.0.0.1:4317"), OtlpProtocol.Grpc, 0.0, "berthd-node-7"), (tracing.Endpoint, tracing.Protocol, tracing.SamplingRatio, tracing.ServiceName));
        Assert.Equal(0.25, ConfigLoader.Parse("[tracing]\nsampling_ratio = 0.25").Tracing.SamplingRatio);
    }

    [Theory]
    [InlineData("http://collector:4318", "http/protobuf", "http://collector:4318/v1/traces")]
    [InlineData("http://collector:4318/", "http/protobuf", "http://collector:4318/v1/traces")]
    [InlineData("https://collector/otlp/v1/traces", "http/protobuf", "https://collector/otlp/v1/traces")]
    [InlineData("http://collector:4317", "grpc", "http://collector:4317/")]
    public void The_OTLP_HTTP_endpoint_gets_the_traces_path_as_the_OTLP_exporter_convention_adds_it(string endpoint, string protocol, string expected) =>
        Assert.Equal(expected, Observability.TraceExport.TracesUri(new Uri(endpoint), protocol == "grpc" ? OtlpProtocol.Grpc : OtlpProtocol.HttpProtobuf).ToString());

    [Fact]
    public void NRI_is_on_by_default_at_containerds_paths_and_takes_its_keys()
    {
        var defaults = ConfigLoader.Parse("").Nri;
        Assert.True(defaults.Enable);
        Assert.Equal(("/var/run/nri/nri.sock", "/opt/nri/plugins", "/etc/nri/conf.d"), (defaults.SocketPath, defaults.PluginPath, defaults.PluginConfigPath));
        Assert.Equal((TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2)), (defaults.PluginRegistrationTimeout, defaults.PluginRequestTimeout));

        var nri = ConfigLoader.Parse("""
            [nri]
            enable = false
            socket_path = "/run/nri.sock"
            disable_connections = true
            plugin_registration_timeout = "1s"
            plugin_request_timeout = "500ms"
            required_plugins = ["policy"]
            """).Nri;
        Assert.False(nri.Enable);
        Assert.True(nri.DisableConnections);
        Assert.Equal("/run/nri.sock", nri.SocketPath);
        Assert.Equal((TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500)), (nri.PluginRegistrationTimeout, nri.PluginRequestTimeout));
        Assert.Equal(["policy"], nri.RequiredPlugins);
    }

    [Fact]
    public void CDI_spec_dirs_are_read_in_order() =>
        Assert.Equal(["/opt/cdi", "/run/cdi"], ConfigLoader.Parse("[cdi]\nspec_dirs = [\"/opt/cdi\", \"/run/cdi\"]").Cdi.SpecDirs);

    [Fact]
    public void The_runtime_section_is_read()
    {
        var config = ConfigLoader.Parse("""
            [runtime]
            default_handler = "fast"
            restrict_oom_score_adj = true
            shim_binary = "/usr/libexec/berth/berth-shim"
            pids_limit = 4096

            [runtime.handlers.fast]
            binary = "/usr/bin/crun"
            """);

        Assert.True(config.Runtime.RestrictOomScoreAdj);
        Assert.Equal(4096, config.Runtime.PidsLimit);
        Assert.Equal(0, ConfigLoader.Parse("").Runtime.PidsLimit);
        Assert.Equal("/usr/libexec/berth/berth-shim", config.Runtime.ShimBinary);
        Assert.Equal("fast", config.Runtime.DefaultHandler);
        Assert.Equal("/usr/bin/crun", config.Runtime.Handlers["fast"].Binary);
    }

    [Fact]
    public void Every_key_is_read()
    {
        var config = ConfigLoader.Parse("""
            root = "/data/berth"
            state = "/run/b"
            log_level = "debug"
            log_format = "json"

            [grpc]
            socket = "/run/b/cri.sock"
            gid = 1000
            shutdown_timeout = "1m30s"

            [metrics]
            address = "127.0.0.1:9400"

            [images]
            platform = "linux/arm64/v8"
            max_concurrent_downloads = 5

            [images.registries."docker.io"]
            mirrors = ["http://127.0.0.1:5000", "https://mirror.example/prefix"]

            [images.registries."127.0.0.1:5000"]
            insecure = true

            [images.registries."registry.k8s.io"]
            server = "http://127.0.0.1:5000"

            [images.registries."secure.example"]
            ca_file = "/etc/berth/ca.pem"
            skip_verify = false
            """);

        Assert.Equal("/data/berth", config.Root);
        Assert.Equal("/run/b", config.State);
        Assert.Equal(LogLevel.Debug, config.LogLevel);
        Assert.Equal(LogFormat.Json, config.LogFormat);
        Assert.Equal("/run/b/cri.sock", config.Grpc.Socket);
        Assert.Equal(1000, config.Grpc.Gid);
        Assert.Equal(TimeSpan.FromSeconds(90), config.Grpc.ShutdownTimeout);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9400), config.Metrics.Address);
        Assert.Equal("linux/arm64/v8", config.Images.Platform);
        Assert.Equal(5, config.Images.MaxConcurrentDownloads);
        Assert.Equal([new Uri("http://127.0.0.1:5000"), new Uri("https://mirror.example/prefix")], config.Images.Registries["docker.io"].Mirrors);
        Assert.True(config.Images.Registries["127.0.0.1:5000"].Insecure);
        Assert.Equal(new Uri("http://127.0.0.1:5000"), config.Images.Registries["registry.k8s.io"].Server);
        Assert.Equal("/etc/berth/ca.pem", config.Images.Registries["secure.example"].CaFile);
    }

    [Theory]
    [InlineData("roots = \"/x\"", "unknown key 'roots'")]
    [InlineData("[grpc]\nsockett = \"/x\"", "unknown key 'grpc.sockett'")]
    [InlineData("[volumes]\nroot = \"/x\"", "unknown key 'volumes'")]
    [InlineData("[images]\nplatform = \"arm64\"", "images.platform: 'arm64' is not os/architecture")]
    [InlineData("[images.registries.\"docker.io\"]\nmirrors = [\"ftp://x\"]", "images.registries.\"docker.io\".mirrors: 'ftp://x' is not an http")]
    [InlineData("[images.registries.\"docker.io\"]\nmirror = [\"http://x\"]", "unknown key 'images.registries.docker.io.mirror'")]
    [InlineData("[images]\nmax_concurrent_downloads = 0", "images.max_concurrent_downloads: 0 is out of range")]
    [InlineData("root = 5", "root: expected a string, got the integer 5")]
    [InlineData("grpc = \"x\"", "grpc: expected a table, got the string \"x\"")]
    [InlineData("log_level = \"verbose\"", "log_level: 'verbose' is not one of trace, debug, info, warn, error")]
    [InlineData("log_format = \"xml\"", "log_format: 'xml' is not one of text, json")]
    [InlineData("[grpc]\ngid = -1", "grpc.gid: -1 is out of range")]
    [InlineData("[grpc]\nshutdown_timeout = \"soon\"", "grpc.shutdown_timeout: 'soon' is not a duration")]
    [InlineData("[grpc]\nshutdown_timeout = 10", "grpc.shutdown_timeout: expected a string, got the integer 10")]
    [InlineData("[metrics]\naddress = \"localhost\"", "metrics.address: 'localhost' is not an address with a port")]
    [InlineData("[metrics]\naddress = \"127.0.0.1:0\"", "metrics.address: '127.0.0.1:0'")]
    [InlineData("[streaming]\naddress = \"localhost\"", "streaming.address: 'localhost' is not an address with a port")]
    [InlineData("[streaming]\ntls_cert_file = \"/etc/berth/cert.pem\"", "streaming.tls_cert_file and streaming.tls_key_file go together")]
    [InlineData("[streaming]\ntls_cert_file = \"/nonexistent/c.pem\"\ntls_key_file = \"/nonexistent/k.pem\"", "streaming.tls_cert_file: '/nonexistent/c.pem' does not exist")]
    [InlineData("[streaming]\nmax_outstanding = 0", "streaming.max_outstanding: 0 is out of range")]
    [InlineData("[streaming]\ntoken_lifetime = \"forever\"", "streaming.token_lifetime: 'forever' is not a duration")]
    [InlineData("root = ", "invalid TOML")]
    [InlineData("[runtime]\nrestrict_oom_score_adj = \"yes\"", "runtime.restrict_oom_score_adj: expected true or false")]
    [InlineData("[runtime]\nshim_binary = \"berth-shim\"", "runtime.shim_binary: 'berth-shim' must be an absolute path")]
    [InlineData("[images]\npinned = [\"Not A Name\"]", "images.pinned: 'Not A Name' is not an image name")]
    [InlineData("[runtime]\npids_limit = -1", "runtime.pids_limit: -1 is out of range")]
    [InlineData("[cdi]\nspec_dirs = [\"cdi\"]", "cdi.spec_dirs: 'cdi' must be an absolute path")]
    [InlineData("[cdi]\nspec_dir = [\"/etc/cdi\"]", "unknown key 'cdi.spec_dir'")]
    [InlineData("[nri]\nplugin_path = \"plugins\"", "nri.plugin_path: 'plugins' must be an absolute path")]
    [InlineData("[nri]\nplugin_request_timeout = \"0s\"", "nri.plugin_request_timeout: must be positive")]
    [InlineData("[nri]\nrequired = [\"x\"]", "unknown key 'nri.required'")]
    [InlineData("[runtime]\ncgroup_driver = \"Systemd\"", "runtime.cgroup_driver: 'Systemd' is neither \"systemd\" nor \"cgroupfs\"")]
    [InlineData("[tracing]\nendpoint = \"127.0.0.1:4318\"", "tracing.endpoint: '127.0.0.1:4318' is not an http:// or https:// URL")]
    [InlineData("[tracing]\nprotocol = \"http/json\"", "tracing.protocol: 'http/json' is not one of http/protobuf, grpc")]
    [InlineData("[tracing]\nsampling_ratio = 1.5", "tracing.sampling_ratio: 1.5 is out of range [0, 1]")]
    [InlineData("[tracing]\nsampling_ratio = \"all\"", "tracing.sampling_ratio: expected a number from 0 to 1")]
    [InlineData("[tracing]\nservice_name = \"\"", "tracing.service_name: must not be empty")]
    [InlineData("[tracing]\nsampling_rate = 1", "unknown key 'tracing.sampling_rate'")]
    public void Bad_input_names_the_key(string toml, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(toml));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Streaming_defaults_to_a_random_loopback_port_and_takes_its_keys()
    {
        var defaults = ConfigLoader.Parse("");
        Assert.Equal("127.0.0.1:0", defaults.Streaming.Address.ToString());
        Assert.Equal(TimeSpan.FromMinutes(1), defaults.Streaming.TokenLifetime);
        var config = ConfigLoader.Parse("[streaming]\naddress = \"[::1]:10010\"\ntoken_lifetime = \"30s\"\nidle_timeout = \"1h\"\nmax_outstanding = 10\nmax_sessions = 20\n");
        Assert.Equal("[::1]:10010", config.Streaming.Address.ToString());
        Assert.Equal((TimeSpan.FromSeconds(30), TimeSpan.FromHours(1), 10, 20),
            (config.Streaming.TokenLifetime, config.Streaming.IdleTimeout, config.Streaming.MaxOutstanding, config.Streaming.MaxSessions));
    }

    [Fact]
    public void Command_line_overrides_the_file()
    {
        using var dir = new TempDir();
        var path = dir.Write("config.toml", "root = \"/from/file\"\nstate = \"/state/file\"\n");

        var config = ConfigLoader.Load(CommandLineOptions.Parse(
            ["--config", path, "--root", "/from/flag", "--socket=/tmp/x.sock", "--log-level", "warn"]));

        Assert.Equal("/from/flag", config.Root);
        Assert.Equal("/state/file", config.State);
        Assert.Equal("/tmp/x.sock", config.Grpc.Socket);
        Assert.Equal(LogLevel.Warning, config.LogLevel);
    }

    [Fact]
    public void A_config_named_on_the_command_line_must_exist()
    {
        var error = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(CommandLineOptions.Parse(["--config", "/nonexistent/berth.toml"])));
        Assert.Equal("/nonexistent/berth.toml: the config file does not exist", error.Message);
    }

    [Fact]
    public void Errors_in_the_file_name_the_file()
    {
        using var dir = new TempDir();
        var path = dir.Write("config.toml", "[grpc]\nport = 1\n");

        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Load(CommandLineOptions.Parse(["--config", path])));
        Assert.Equal($"{path}: unknown key 'grpc.port'", error.Message);
    }

    [Theory]
    [InlineData("--root", "relative/dir", "root: 'relative/dir' must be an absolute path")]
    [InlineData("--state", "state", "state: 'state' must be an absolute path")]
    [InlineData("--socket", "berth.sock", "grpc.socket: 'berth.sock' must be an absolute path")]
    public void Paths_must_be_absolute(string flag, string value, string expected)
    {
        using var dir = new TempDir();
        var path = dir.Write("config.toml", "");
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Load(CommandLineOptions.Parse(["--config", path, flag, value])));
        Assert.Equal(expected, error.Message);
    }

    [Fact]
    public void A_socket_path_longer_than_sun_path_is_refused()
    {
        using var dir = new TempDir();
        var path = dir.Write("config.toml", "");
        var socket = "/run/" + new string('s', 110);
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Load(CommandLineOptions.Parse(["--config", path, "--socket", socket])));
        Assert.StartsWith("grpc.socket:", error.Message, StringComparison.Ordinal);
        Assert.Contains("107 bytes", error.Message, StringComparison.Ordinal);
    }
}
