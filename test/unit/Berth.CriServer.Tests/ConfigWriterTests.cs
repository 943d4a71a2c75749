using Berth.CriServer.Configuration;

namespace Berth.CriServer.Tests;

/// <summary><c>berthd config default</c> and <c>dump</c>: TOML that reads back to the same config, and drop-ins in <c>config.d</c>.</summary>
public sealed class ConfigWriterTests
{
    private const string Rich = """
        root = "/srv/berth \"a\"\\b"
        log_level = "debug"
        log_format = "json"
        [grpc]
        gid = 42
        shutdown_timeout = "1m30s"
        [metrics]
        address = "127.0.0.1:9400"
        [tracing]
        endpoint = "http://127.0.0.1:4317/"
        protocol = "grpc"
        sampling_ratio = 0.125
        [streaming]
        address = "0.0.0.0:10010"
        token_lifetime = "250ms"
        [cni]
        conf_dirs = ["/etc/cni/net.d", "/etc/cni/other"]
        [runtime]
        default_handler = "crun"
        cgroup_driver = "systemd"
        pids_limit = 4096
        restrict_oom_score_adj = true
        [runtime.handlers.crun]
        binary = "/usr/bin/crun"
        [runtime.handlers."kata-qemu"]
        binary = "/opt/kata/bin/kata-runtime"
        [images]
        pinned = ["registry.k8s.io/pause*", "quay.io/app:v1"]
        [images.registries."docker.io"]
        mirrors = ["https://mirror.example/v2/proxy"]
        [images.registries."10.0.0.5:5000"]
        server = "http://10.0.0.5:5000"
        insecure = true
        skip_verify = true
        """;

    [Fact]
    public void The_defaults_read_back_to_themselves_with_a_comment_over_every_key()
    {
        var text = ConfigWriter.Write(new BerthConfig(), comments: true);
        Assert.Equal(text, ConfigWriter.Write(ConfigLoader.Parse(text), comments: true));
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0 || lines[i].StartsWith('#') || lines[i].StartsWith('[')) continue;
            Assert.StartsWith("# ", lines[i - 1], StringComparison.Ordinal);
        }
        // Unset keys are shown, commented out, so the file names every key there is.
        Assert.Contains("# address = \"127.0.0.1:9400\"", text, StringComparison.Ordinal);
        Assert.Contains("# cgroup_driver = \"systemd\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_dump_of_any_config_reads_back_to_the_same_config()
    {
        var config = ConfigLoader.Parse(Rich);
        var dump = ConfigWriter.Write(config, comments: false);
        Assert.DoesNotContain("#", dump.Replace("\\\"", "", StringComparison.Ordinal), StringComparison.Ordinal);
        var again = ConfigLoader.Parse(dump);
        Assert.Equal(dump, ConfigWriter.Write(again, comments: false));
        Assert.Equal(["crun", "kata-qemu"], again.Runtime.Handlers.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("/srv/berth \"a\"\\b", again.Root);
        Assert.Equal("quay.io/app:v1", again.Images.Pinned[1]);
        Assert.Equal(TimeSpan.FromSeconds(90), again.Grpc.ShutdownTimeout);
        Assert.True(again.Images.Registries["10.0.0.5:5000"].SkipVerify);
    }

    [Fact]
    public void Drop_ins_apply_in_lexical_order_and_add_handlers_and_registries_by_name()
    {
        using var dir = new TempDir();
        var main = dir.Write("config.toml", """
            log_level = "warn"
            [runtime.handlers.runc]
            binary = "runc"
            [images.registries."docker.io"]
            mirrors = ["https://a.example"]
            """);
        Directory.CreateDirectory(Path.Combine(dir.Path, "config.d"));
        dir.Write("config.d/20-late.toml", "log_level = \"error\"\n");
        dir.Write("config.d/10-early.toml", """
            log_level = "debug"
            [runtime.handlers.crun]
            binary = "crun"
            [images.registries."quay.io"]
            server = "https://quay.example"
            """);
        dir.Write("config.d/README", "not toml, not read");

        var config = ConfigLoader.Load(new CommandLineOptions { ConfigPath = main });
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Error, config.LogLevel);
        Assert.Equal(["crun", "runc"], config.Runtime.Handlers.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["docker.io", "quay.io"], config.Images.Registries.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_bad_drop_in_is_named_with_its_key()
    {
        using var dir = new TempDir();
        var main = dir.Write("config.toml", "");
        Directory.CreateDirectory(Path.Combine(dir.Path, "config.d"));
        var bad = dir.Write("config.d/50-typo.toml", "[runtime]\npids_limt = 5\n");
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Load(new CommandLineOptions { ConfigPath = main }));
        Assert.Equal($"{bad}: unknown key 'runtime.pids_limt'", error.Message);

        File.WriteAllText(bad, "[grpc]\ngid = \"wheel\"\n");
        error = Assert.Throws<ConfigException>(() => ConfigLoader.Load(new CommandLineOptions { ConfigPath = main }));
        Assert.StartsWith($"{bad}: grpc.gid: expected an integer", error.Message, StringComparison.Ordinal);
    }
}
