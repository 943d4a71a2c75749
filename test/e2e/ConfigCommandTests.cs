using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary><c>berthd config default</c> and <c>dump</c>, and drop-ins in <c>config.d</c> beside the config file.</summary>
public sealed class ConfigCommandTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task The_default_config_is_commented_and_dumps_as_no_config_at_all()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        try
        {
            var (code, defaults) = await BerthDaemon.RunToExitAsync(["config", "default"], ExitTimeout);
            Assert.Equal(0, code);
            Assert.Contains("# the CRI socket", defaults, StringComparison.Ordinal);
            Assert.Contains("[runtime.handlers.runc]", defaults, StringComparison.Ordinal);
            var file = Path.Combine(directory, "config.toml");
            await File.WriteAllTextAsync(file, defaults);
            var empty = Path.Combine(directory, "empty.toml");
            await File.WriteAllTextAsync(empty, "");

            var (dumpCode, dump) = await BerthDaemon.RunToExitAsync(["config", "dump", "--config", file], ExitTimeout);
            var (emptyCode, emptyDump) = await BerthDaemon.RunToExitAsync(["config", "dump", "--config", empty], ExitTimeout);
            Assert.Equal((0, 0), (dumpCode, emptyCode));
            Assert.Equal(emptyDump, dump);
            Assert.DoesNotContain("#", dump, StringComparison.Ordinal);

            var (flagCode, flagged) = await BerthDaemon.RunToExitAsync(["config", "dump", "--config", empty, "--log-level", "debug"], ExitTimeout);
            Assert.Equal(0, flagCode);
            Assert.Contains("log_level = \"debug\"", flagged, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_drop_in_adds_a_registry_that_a_pull_then_uses()
    {
        var directory = Directory.CreateTempSubdirectory("be-").FullName;
        var dropIns = Directory.CreateDirectory(Path.Combine(directory, "config.d")).FullName;
        // Only the drop-in knows where "drop-in.test" is; the name itself resolves nowhere.
        await File.WriteAllTextAsync(Path.Combine(dropIns, "10-registry.toml"), $"[images.registries.\"drop-in.test\"]\nserver = \"http://{bed.Registry.Host}\"\n");
        await File.WriteAllTextAsync(Path.Combine(dropIns, "20-level.toml"), "log_level = \"info\"\n");
        var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
        try
        {
            var pulled = await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = "drop-in.test/busybox:test" } });
            Assert.StartsWith("sha256:", pulled.ImageRef, StringComparison.Ordinal);

            var (code, dump) = await BerthDaemon.RunToExitAsync(["config", "dump", "--config", daemon.ConfigPath], ExitTimeout);
            Assert.Equal(0, code);
            var table = dump[dump.IndexOf("[images.registries.\"drop-in.test\"]", StringComparison.Ordinal)..];
            Assert.Contains($"server = \"http://{bed.Registry.Host}", table, StringComparison.Ordinal);
            // The later drop-in's log level wins over the fixture's debug.
            Assert.Contains("log_level = \"info\"", dump, StringComparison.Ordinal);
        }
        finally
        {
            await daemon.RemoveEverythingAsync();
            await daemon.DisposeAsync();
            // The test gave the daemon its directory, so the daemon leaves it.
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_drop_in_with_a_typo_stops_startup_naming_the_file_and_the_key()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        try
        {
            var config = Path.Combine(directory, "config.toml");
            await File.WriteAllTextAsync(config, $"root = \"{directory}/root\"\nstate = \"{directory}/st\"\n[grpc]\nsocket = \"{directory}/b.sock\"\n");
            var typo = Path.Combine(Directory.CreateDirectory(Path.Combine(directory, "config.d")).FullName, "50-typo.toml");
            await File.WriteAllTextAsync(typo, "[images]\nmax_concurrent_downlaods = 4\n");

            var (exitCode, output) = await BerthDaemon.RunToExitAsync(["--config", config], ExitTimeout);

            Assert.Equal(2, exitCode);
            Assert.Contains($"{typo}: unknown key 'images.max_concurrent_downlaods'", output, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(directory, "b.sock")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
