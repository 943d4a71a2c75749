using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>hack/package's .deb, installed into a throwaway root with dpkg --root and purged again.</summary>
public sealed class PackageTests
{
    [Fact]
    public async Task The_deb_installs_the_daemon_shim_cli_unit_and_configs_and_purges_clean()
    {
        TestEnvironment.RequireRoot();
        var work = Directory.CreateTempSubdirectory("berth-deb-").FullName;
        try
        {
            var deb = await DebPackage.BuildAsync(work);

            // A dpkg database of its own: nothing of the host's is touched, and its dependencies are not there to check.
            var root = Path.Combine(work, "root");
            Directory.CreateDirectory(Path.Combine(root, "var", "lib", "dpkg", "info"));
            Directory.CreateDirectory(Path.Combine(root, "var", "lib", "dpkg", "updates"));
            File.WriteAllText(Path.Combine(root, "var", "lib", "dpkg", "status"), "");
            var install = Host.Run("dpkg", $"--root={root}", "--force-depends", "--force-script-chrootless", "--log=/dev/null", "-i", deb);
            Assert.True(install.ExitCode == 0, install.Output);

            foreach (var binary in new[] { "berthd", "berth-shim", "berth" })
                Assert.True(File.Exists(Path.Combine(root, "usr", "bin", binary)), $"/usr/bin/{binary} is not installed");
            var unit = await File.ReadAllTextAsync(Path.Combine(root, "lib", "systemd", "system", "berth.service"));
            Assert.Contains("ExecStart=/usr/bin/berthd --config /etc/berth/config.toml", unit, StringComparison.Ordinal);
            Assert.Contains("Type=notify", unit, StringComparison.Ordinal);
            Assert.Contains("runtime-endpoint: unix:///run/berth/berth.sock", await File.ReadAllTextAsync(Path.Combine(root, "etc", "crictl.yaml")), StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(root, "etc", "cni", "net.d", "10-berth-bridge.conflist")));
            Assert.True(Directory.Exists(Path.Combine(root, "opt", "cni", "bin")));
            Assert.True(Directory.Exists(Path.Combine(root, "etc", "berth", "config.d")));
            var registered = Host.Run("dpkg-query", $"--admindir={root}/var/lib/dpkg", "-W", "-f=${Status} ${Version}", "berth");
            Assert.StartsWith("install ok installed", registered.Output, StringComparison.Ordinal);

            // The installed binaries run, and the packaged config is one berthd accepts as it is.
            var version = Host.Run(Path.Combine(root, "usr", "bin", "berthd"), "--version");
            Assert.True(version.ExitCode == 0, version.Output);
            var dump = Host.Run(Path.Combine(root, "usr", "bin", "berthd"), "config", "dump", "--config", Path.Combine(root, "etc", "berth", "config.toml"));
            Assert.True(dump.ExitCode == 0, dump.Output);
            Assert.Contains("socket = \"/run/berth/berth.sock\"", dump.Output, StringComparison.Ordinal);
            Assert.Contains("shim_binary = \"/usr/bin/berth-shim\"", dump.Output, StringComparison.Ordinal);
            var help = Host.Run(Path.Combine(root, "usr", "bin", "berth"), "--help");
            Assert.Contains("play", help.Output, StringComparison.Ordinal);

            var purge = Host.Run("dpkg", $"--root={root}", "--force-script-chrootless", "--log=/dev/null", "--purge", "berth");
            Assert.True(purge.ExitCode == 0, purge.Output);
            Assert.False(File.Exists(Path.Combine(root, "usr", "bin", "berthd")));
            Assert.False(File.Exists(Path.Combine(root, "etc", "berth", "config.toml")), "purge leaves the conffile");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
