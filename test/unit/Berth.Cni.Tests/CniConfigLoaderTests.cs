namespace Berth.Cni.Tests;

public sealed class CniConfigLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("berth-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void Write(string name, string json) => File.WriteAllText(Path.Combine(_dir, name), json);

    [Fact]
    public void The_lexically_first_valid_file_wins_and_broken_ones_are_skipped()
    {
        Write("05-broken.conflist", "{ not json");
        Write("10-bridge.conflist", """{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}""");
        Write("20-other.conf", """{"cniVersion":"0.4.0","name":"other","type":"ptp"}""");
        Write("00-readme.txt", "not a config");

        var (config, reason) = CniConfigLoader.Load([_dir]);

        Assert.NotNull(config);
        Assert.Equal("", reason);
        Assert.Equal("pods", config.Name);
        Assert.Equal("1.0.0", config.CniVersion);
        Assert.Equal(["bridge", "portmap"], config.PluginTypes);
        Assert.EndsWith("10-bridge.conflist", config.SourcePath, StringComparison.Ordinal);
    }

    [Fact]
    public void A_single_plugin_conf_is_a_list_of_one()
    {
        Write("10.conf", """{"cniVersion":"0.3.1","name":"single","type":"bridge","bridge":"cni0"}""");
        var (config, _) = CniConfigLoader.Load([_dir]);
        Assert.NotNull(config);
        Assert.Equal(["bridge"], config.PluginTypes);
        Assert.Equal("cni0", (string?)config.Plugins[0]["bridge"]);
    }

    [Theory]
    [InlineData("""{"name":"x","plugins":[{"type":"bridge"}]}""", "\"cniVersion\" is missing")]
    [InlineData("""{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}""", "\"name\" is missing")]
    [InlineData("""{"cniVersion":"1.0.0","name":"x","plugins":[]}""", "\"plugins\" is empty")]
    [InlineData("""{"cniVersion":"1.0.0","name":"x","plugins":[{"bridge":"cni0"}]}""", "plugins[0] has no \"type\"")]
    [InlineData("""{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"../../bin/sh"}]}""", "is not a plugin name")]
    [InlineData("""{"cniVersion":"1.0.0","name":"x"}""", "neither \"plugins\"")]
    public void Invalid_configs_say_why(string json, string reason)
    {
        Write("10.conflist", json);
        var (config, message) = CniConfigLoader.Load([_dir]);
        Assert.Null(config);
        Assert.Contains(reason, message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_files_is_a_clear_reason()
    {
        var (config, reason) = CniConfigLoader.Load([_dir, "/nonexistent/cni"]);
        Assert.Null(config);
        Assert.Contains("no network config found in", reason, StringComparison.Ordinal);
    }
}
