using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using static Tmds.Linux.LibC;

namespace Berth.E2E.Tests;

/// <summary>Startup, shutdown and socket ownership; each test runs its own berthd.</summary>
public sealed class DaemonLifecycleTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Sigterm_stops_berthd_cleanly_and_removes_the_socket()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        await daemon.Runtime.VersionAsync(new VersionRequest());

        daemon.Signal(SIGTERM);

        Assert.Equal(0, await daemon.WaitForExitAsync(ExitTimeout));
        Assert.False(File.Exists(daemon.SocketPath), "the socket outlived berthd");
        Assert.Contains("berthd stopped", daemon.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sigterm_lets_an_in_flight_pull_finish()
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        using var pusher = new RegistryPusher(registry);
        var random = new Random(3);
        var builder = new TestImageBuilder();
        for (var i = 0; i < 4; i++)
        {
            var content = new byte[20 * 1024 * 1024];
            random.NextBytes(content);
            builder.Layer(TestLayers.Tar(w => TestLayers.File(w, $"big{i}", content, 0x1A4)), Compression.Gzip);
        }
        var image = builder.Build();
        await pusher.PushAsync("berth/big", image, "1");
        await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { ExtraConfig = "[images]\nmax_concurrent_downloads = 1\n" });

        var pull = daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{registry.Host}/berth/big:1" } }).ResponseAsync;
        // Wait until the pull is under way (its first layer is being fetched), then ask berthd to stop.
        for (var i = 0; i < 200 && !daemon.Output.Contains("fetching layer", StringComparison.Ordinal); i++) await Task.Delay(10);
        daemon.Signal(SIGTERM);

        var pulled = await pull;
        Assert.Equal(image.Id, pulled.ImageRef);
        Assert.Equal(0, await daemon.WaitForExitAsync(ExitTimeout));
        Assert.False(File.Exists(daemon.SocketPath));
    }

    [Fact]
    public async Task Sigint_stops_berthd_too()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        daemon.Signal(SIGINT);
        Assert.Equal(0, await daemon.WaitForExitAsync(ExitTimeout));
        Assert.False(File.Exists(daemon.SocketPath));
    }

    [Fact]
    public async Task The_socket_is_0660_in_a_directory_berthd_created()
    {
        var parent = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        try
        {
            var socket = Path.Combine(parent, "run", "berth", "b.sock");
            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { SocketPath = socket });

            Assert.Equal(
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite,
                File.GetUnixFileMode(socket));
            await daemon.Runtime.VersionAsync(new VersionRequest());
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public async Task A_second_berthd_on_the_same_socket_is_a_clear_error()
    {
        await using var first = await BerthDaemon.StartAsync();

        var (exitCode, output) = await BerthDaemon.RunToExitAsync(
            ["--config", first.ConfigPath, "--root", first.RootPath + "2", "--state", first.StatePath + "2"], ExitTimeout);

        Assert.NotEqual(0, exitCode);
        Assert.Contains($"another process is already serving on '{first.SocketPath}'", output, StringComparison.Ordinal);
        // The first one is untouched and still serving.
        Assert.True(File.Exists(first.SocketPath));
        await first.Runtime.VersionAsync(new VersionRequest());
    }

    [Fact]
    public async Task A_stale_socket_from_a_crash_is_replaced()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        var socketPath = Path.Combine(directory, "berth.sock");
        // A bound socket whose listener is gone: what a SIGKILLed berthd leaves behind.
        // (Through libc: .NET's Socket unlinks the path it bound when it is disposed.)
        BindAndAbandon(socketPath);
        Assert.True(File.Exists(socketPath));

        try
        {
            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
            var version = await daemon.Runtime.VersionAsync(new VersionRequest());
            Assert.Equal("berth", version.RuntimeName);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_killed_berthd_is_restarted_on_the_same_socket()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        try
        {
            await using (var crashed = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory }))
            {
                crashed.Signal(SIGKILL);
                await crashed.WaitForExitAsync(ExitTimeout);
                Assert.True(File.Exists(crashed.SocketPath), "SIGKILL leaves the socket file behind");
            }

            await using var restarted = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
            await restarted.Runtime.VersionAsync(new VersionRequest());
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_bad_config_file_stops_startup_naming_the_key()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        try
        {
            var config = Path.Combine(directory, "config.toml");
            await File.WriteAllTextAsync(config, $"root = \"{directory}/root\"\n[grpc]\nsocket = \"{directory}/b.sock\"\nshutdown_timeout = \"forever\"\n");

            var (exitCode, output) = await BerthDaemon.RunToExitAsync(["--config", config], ExitTimeout);

            Assert.NotEqual(0, exitCode);
            Assert.Contains($"{config}: grpc.shutdown_timeout: 'forever' is not a duration", output, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(directory, "b.sock")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task An_unknown_flag_stops_startup()
    {
        var (exitCode, output) = await BerthDaemon.RunToExitAsync(["--sokcet", "/tmp/x.sock"], ExitTimeout);
        Assert.NotEqual(0, exitCode);
        Assert.Contains("Unrecognized command or argument '--sokcet'", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unwritable_root_stops_startup_naming_the_path()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        try
        {
            // A regular file where a directory should be: even root cannot create a directory beneath it.
            var blocker = Path.Combine(directory, "file");
            await File.WriteAllTextAsync(blocker, "");
            var root = Path.Combine(blocker, "root");

            var (exitCode, output) = await BerthDaemon.RunToExitAsync(
                ["--root", root, "--state", Path.Combine(directory, "state"), "--socket", Path.Combine(directory, "b.sock"),
                 "--config", await WriteEmptyConfig(directory)], ExitTimeout);

            Assert.NotEqual(0, exitCode);
            Assert.Contains($"root: directory '{root}' is not writable", output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Help_and_version_exit_zero()
    {
        var (helpCode, help) = await BerthDaemon.RunToExitAsync(["--help"], ExitTimeout);
        Assert.Equal(0, helpCode);
        Assert.Contains("--config <path>", help, StringComparison.Ordinal);

        var (versionCode, version) = await BerthDaemon.RunToExitAsync(["--version"], ExitTimeout);
        Assert.Equal(0, versionCode);
        Assert.StartsWith("berthd ", version, StringComparison.Ordinal);
    }

    private static unsafe void BindAndAbandon(string path)
    {
        var fd = socket(AF_UNIX, SOCK_STREAM, 0);
        Assert.True(fd >= 0);
        var address = default(Tmds.Linux.sockaddr_un);
        address.sun_family = AF_UNIX;
        var bytes = System.Text.Encoding.UTF8.GetBytes(path);
        for (var i = 0; i < bytes.Length; i++) address.sun_path[i] = bytes[i];
        Assert.Equal(0, bind(fd, (Tmds.Linux.sockaddr*)&address, (uint)sizeof(Tmds.Linux.sockaddr_un)));
        Assert.Equal(0, listen(fd, 1));
        Assert.Equal(0, close(fd));
    }

    private static async Task<string> WriteEmptyConfig(string directory)
    {
        var path = Path.Combine(directory, "empty.toml");
        await File.WriteAllTextAsync(path, "");
        return path;
    }

    [Fact]
    public async Task A_host_that_refuses_negative_oom_score_adj_is_named_at_startup_unless_the_clamp_is_on()
    {
        // The same probe as berthd's, from this (root) test process: lower our own value to a negative one.
        var own = File.ReadAllText("/proc/self/oom_score_adj").Trim();
        bool refused;
        try
        {
            File.WriteAllText("/proc/self/oom_score_adj", "-1");
            File.WriteAllText("/proc/self/oom_score_adj", own);
            refused = false;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            refused = true;
        }

        await using (var unclamped = await BerthDaemon.StartAsync(new DaemonOptions { RestrictOomScoreAdj = false }))
        {
            await WaitForOutputAsync(unclamped, "serving");
            Assert.Equal(refused, unclamped.Output.Contains("set runtime.restrict_oom_score_adj = true", StringComparison.Ordinal));
        }
        await using var clamped = await BerthDaemon.StartAsync();
        await WaitForOutputAsync(clamped, "serving");
        Assert.Contains("runtime.restrict_oom_score_adj: container oom_score_adj values below berthd's own", clamped.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("refuses a negative oom_score_adj", clamped.Output, StringComparison.Ordinal);
    }

    private static async Task WaitForOutputAsync(BerthDaemon daemon, string text)
    {
        for (var i = 0; i < 500 && !daemon.Output.Contains(text, StringComparison.Ordinal); i++) await Task.Delay(10);
        Assert.Contains(text, daemon.Output, StringComparison.Ordinal);
    }
}
