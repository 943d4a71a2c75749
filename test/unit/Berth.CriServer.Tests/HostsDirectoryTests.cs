using Berth.CriServer.Configuration;

namespace Berth.CriServer.Tests;

/// <summary>containerd's hosts.toml, read the way containerd reads it.</summary>
public sealed class HostsDirectoryTests
{
    private static IReadOnlyDictionary<string, RegistryConfig> Load(TempDir dir, string host, string toml)
    {
        Directory.CreateDirectory(Path.Combine(dir.Path, host));
        dir.Write(Path.Combine(host, "hosts.toml"), toml);
        return HostsDirectory.Load(dir.Path);
    }

    [Fact]
    public void Server_and_mirrors_in_file_order_with_their_own_TLS()
    {
        using var dir = new TempDir();
        var hosts = Load(dir, "docker.io", """
            server = "https://registry-1.docker.io"
            ca = "/etc/ssl/hub.pem"

            [host."https://mirror-b.example:5000"]
              capabilities = ["pull", "resolve"]
              ca = ["/etc/ssl/mirror.pem"]

            [host."http://mirror-a.example"]
              capabilities = ["pull"]
              skip_verify = true

            [host."https://push.example"]
              capabilities = ["push"]
            """);
        var hub = hosts["docker.io"];
        Assert.Equal(new Uri("https://registry-1.docker.io"), hub.Server);
        Assert.Equal("/etc/ssl/hub.pem", hub.CaFile);
        Assert.Equal([new Uri("https://mirror-b.example:5000"), new Uri("http://mirror-a.example")], hub.Mirrors);
        Assert.Equal("/etc/ssl/mirror.pem", hosts["mirror-b.example:5000"].CaFile);
        Assert.True(hosts["mirror-a.example"].SkipVerify);
        Assert.False(hosts.ContainsKey("push.example"));
    }

    [Fact]
    public void The_default_host_file_is_kept_under_its_name()
    {
        using var dir = new TempDir();
        var hosts = Load(dir, "_default", "server = \"http://127.0.0.1:5000\"\n");
        Assert.Equal(new Uri("http://127.0.0.1:5000"), hosts[HostsDirectory.DefaultHost].Server);
    }

    [Theory]
    [InlineData("sever = \"https://x.example\"", "unknown key 'sever'")]
    [InlineData("[host.\"https://m.example\"]\ncapabilites = [\"pull\"]", "unknown key 'host.https://m.example.capabilites'")]
    [InlineData("[host.\"https://m.example\"]\ncapabilities = [\"fetch\"]", "capabilities: 'fetch' is not pull, resolve or push")]
    [InlineData("server = \"ftp://x.example\"", "server: 'ftp://x.example' is not an http:// or https:// URL")]
    [InlineData("ca = \"relative.pem\"", "ca: 'relative.pem' must be an absolute path")]
    public void A_mistake_names_the_file_and_the_key(string toml, string message)
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ConfigException>(() => Load(dir, "quay.io", toml));
        Assert.StartsWith(Path.Combine(dir.Path, "quay.io", "hosts.toml") + ":", e.Message, StringComparison.Ordinal);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_host_in_both_the_config_and_a_hosts_file_is_a_conflict()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(Path.Combine(dir.Path, "certs.d", "quay.io"));
        dir.Write("certs.d/quay.io/hosts.toml", "server = \"https://quay.example\"\n");
        var config = dir.Write("config.toml", $"""
            [images]
            config_path = "{dir.Path}/certs.d"
            [images.registries."quay.io"]
            server = "https://other.example"
            """);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(CommandLineOptions.Parse(["--config", config])));
        Assert.Contains($"images.registries.\"quay.io\" and {dir.Path}/certs.d/quay.io/hosts.toml both configure quay.io", e.Message, StringComparison.Ordinal);
    }
}
