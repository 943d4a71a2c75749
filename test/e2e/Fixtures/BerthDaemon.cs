using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Berth.Cri.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// A real berthd process on a private root, state dir and socket, and gRPC clients for it.
/// Every e2e test talks to berthd only through this: the socket, as kubelet would.
/// </summary>
public sealed class BerthDaemon : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output;
    private readonly bool _ownsDirectory;
    private bool _disposed;

    private BerthDaemon(string directory, string socketPath, bool ownsDirectory, Process process, StringBuilder output, int? metricsPort)
    {
        Directory = directory;
        SocketPath = socketPath;
        _ownsDirectory = ownsDirectory;
        _process = process;
        _output = output;
        MetricsPort = metricsPort;
        Channel = CreateChannel(SocketPath);
        Runtime = new RuntimeService.RuntimeServiceClient(Channel);
        Images = new ImageService.ImageServiceClient(Channel);
    }

    /// <summary>The daemon's private directory: config.toml, root/, state/ and berth.sock live here.</summary>
    public string Directory { get; }

    public string SocketPath { get; }
    public string RootPath => Path.Combine(Directory, "root");
    public string StatePath => Path.Combine(Directory, "state");
    public string ConfigPath => Path.Combine(Directory, "config.toml");
    public string CniConfDir => Path.Combine(Directory, "net.d");

    /// <summary>Where external NRI plugins connect (nri.socket_path), in the daemon's directory.</summary>
    public string NriSocket => Path.Combine(Directory, "nri.sock");
    public int? MetricsPort { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    public GrpcChannel Channel { get; }
    public RuntimeService.RuntimeServiceClient Runtime { get; }
    public ImageService.ImageServiceClient Images { get; }

    /// <summary>What berthd printed so far (its log), for assertions and failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    public static async Task<BerthDaemon> StartAsync(DaemonOptions? options = null)
    {
        options ??= new DaemonOptions();
        TestEnvironment.RequireRoot();
        var ownsDirectory = options.Directory is null;
        // Short paths: a unix socket path must fit in 107 bytes.
        var directory = options.Directory ?? System.IO.Directory.CreateTempSubdirectory("be-").FullName;
        // Searchable by others, as /run is: the root of a pod user namespace must reach the state directory in it.
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        var socketPath = options.SocketPath ?? Path.Combine(directory, "berth.sock");
        int? metricsPort = options.EnableMetrics ? RegistryServer.FreePort() : null;

        var config = new StringBuilder();
        config.AppendLine($"root = \"{directory}/root\"");
        config.AppendLine($"state = \"{directory}/state\"");
        config.AppendLine($"log_level = \"{options.LogLevel}\"");
        config.AppendLine("[grpc]");
        config.AppendLine($"socket = \"{socketPath}\"");
        if (options.StreamChunkSize is { } chunk) config.AppendLine($"stream_chunk_size = {chunk}");
        if (metricsPort is not null)
        {
            config.AppendLine("[metrics]");
            config.AppendLine($"address = \"127.0.0.1:{metricsPort}\"");
        }
        // A private CNI config directory, empty unless the test writes a network into it: never the host's.
        var cniDir = Path.Combine(directory, "net.d");
        System.IO.Directory.CreateDirectory(cniDir);
        config.AppendLine("[cni]");
        config.AppendLine($"conf_dirs = [\"{cniDir}\"]");
        config.AppendLine($"bin_dirs = [{string.Join(", ", options.CniBinDirs.Select(d => $"\"{d}\""))}]");
        // This host, like CI's, refuses a negative oom_score_adj (DESIGN.md §6).
        config.AppendLine("[runtime]");
        config.AppendLine($"restrict_oom_score_adj = {(options.RestrictOomScoreAdj ? "true" : "false")}");
        if (options.ShimBinary is not null) config.AppendLine($"shim_binary = \"{options.ShimBinary}\"");
        // NRI on, as on a node, but with the daemon's own socket and plugin directories: never the host's.
        config.AppendLine("[nri]");
        config.AppendLine($"socket_path = \"{directory}/nri.sock\"");
        config.AppendLine($"plugin_path = \"{directory}/nri/plugins\"");
        config.AppendLine($"plugin_config_path = \"{directory}/nri/conf.d\"");
        config.Append(options.NriConfig);
        config.Append(options.ExtraConfig);
        await File.WriteAllTextAsync(Path.Combine(directory, "config.toml"), config.ToString());

        var (process, output) = Launch(["--config", Path.Combine(directory, "config.toml")]);
        var daemon = new BerthDaemon(directory, socketPath, ownsDirectory, process, output, metricsPort);
        try
        {
            await daemon.WaitReadyAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
        return daemon;
    }

    /// <summary>Runs berthd with the given arguments to completion (for startup errors); returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(IReadOnlyList<string> args, TimeSpan timeout)
    {
        TestEnvironment.RequireRoot();
        var (process, output) = Launch(args);
        using (process)
        {
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                throw new TimeoutException($"berthd {string.Join(' ', args)} did not exit within {timeout}; output:\n{output}");
            }
            lock (output) return (process.ExitCode, output.ToString());
        }
    }

    public static GrpcChannel CreateChannel(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    /// <summary>Sends a signal to berthd (SIGTERM for a graceful stop, SIGKILL for a crash).</summary>
    public void Signal(int signal)
    {
        if (Tmds.Linux.LibC.kill(_process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed");
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"berthd (pid {_process.Id}) did not exit within {timeout}; output:\n{Output}");
        }
        return _process.ExitCode;
    }

    /// <summary>Stops berthd (SIGTERM, then SIGKILL if it hangs), then removes its directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        // A test that failed midway leaves containers and pods; a daemon of its own directory cleans them up.
        if (_ownsDirectory && !_process.HasExited) await RemoveEverythingAsync();
        Channel.Dispose();
        if (!_process.HasExited)
        {
            Signal(Tmds.Linux.LibC.SIGTERM);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        _process.Dispose();
        if (_ownsDirectory) KillLeftoverShims();
        if (_ownsDirectory && System.IO.Directory.Exists(Directory))
        {
            // Never delete through a mount that something left behind.
            foreach (var mount in Host.MountsUnder(Directory).Reverse()) Host.Run("umount", "-l", mount);
            Berth.Native.FileTree.Remove(Directory);
        }
    }

    private readonly HashSet<string> _podsSeen = new(StringComparer.Ordinal);

    /// <summary>
    /// A test that failed or ran out of time may leave shims behind (they outlive berthd by design): those of this
    /// daemon's bundles and the infra processes of the pods it listed go, so no test leaves a process on the machine.
    /// </summary>
    private void KillLeftoverShims()
    {
        var patterns = _podsSeen.Select(id => $"berth-shim pause --sandbox {id}").Append($"berth-shim run .*{Directory}/");
        foreach (var pattern in patterns)
        {
            if (Host.Run("pgrep", "-f", pattern) is { ExitCode: 0 } found)
                foreach (var pid in found.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)) Host.Run("kill", "-9", pid);
        }
    }

    /// <summary>Best effort: removes every container and pod (done on disposal when the daemon owns its directory).</summary>
    public async Task RemoveEverythingAsync()
    {
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            foreach (var pod in (await Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: deadline)).Items) _podsSeen.Add(pod.Id);
            foreach (var container in (await Runtime.ListContainersAsync(new ListContainersRequest(), deadline: deadline)).Containers)
                await Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = container.Id }, deadline: deadline);
            foreach (var pod in (await Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: deadline)).Items)
            {
                await Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id }, deadline: deadline);
                await Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id }, deadline: deadline);
            }
        }
        catch (RpcException)
        {
            // Best effort: the test has failed already, or berthd is broken, and the directory goes anyway.
        }
    }

    private async Task WaitReadyAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"berthd exited with {_process.ExitCode} during startup; output:\n{Output}");
            if (File.Exists(SocketPath))
            {
                try
                {
                    await Runtime.VersionAsync(new VersionRequest(), deadline: DateTime.UtcNow.AddSeconds(2));
                    return;
                }
                catch (RpcException) when (deadline.Elapsed < timeout)
                {
                }
            }
            if (deadline.Elapsed > timeout)
                throw new TimeoutException($"berthd was not ready within {timeout}; output:\n{Output}");
            await Task.Delay(20);
        }
    }

    private static (Process, StringBuilder) Launch(IReadOnlyList<string> args) => ChildProcess.Start(TestEnvironment.Berthd, args);

}

public sealed record DaemonOptions
{
    /// <summary>Reuse a directory (to restart berthd on the same state); null makes a fresh temp one.</summary>
    public string? Directory { get; init; }

    /// <summary>The CRI socket; null puts it in the daemon's directory.</summary>
    public string? SocketPath { get; init; }

    public bool EnableMetrics { get; init; }

    /// <summary>grpc.stream_chunk_size: items per Stream* message; null keeps the default.</summary>
    public int? StreamChunkSize { get; init; }

    /// <summary>Where CNI plugins are looked up: Debian's, plus any a test adds.</summary>
    public IReadOnlyList<string> CniBinDirs { get; init; } = ["/usr/lib/cni"];

    /// <summary>Keys added to the generated <c>[nri]</c> table (socket and plugin directories are the daemon's own).</summary>
    public string NriConfig { get; init; } = "";

    /// <summary>TOML appended to the generated config.</summary>
    public string ExtraConfig { get; init; } = "";

    /// <summary>runtime.restrict_oom_score_adj, on in the tests as this host needs.</summary>
    public bool RestrictOomScoreAdj { get; init; } = true;

    /// <summary>runtime.shim_binary; null uses the berth-shim published beside berthd.</summary>
    public string? ShimBinary { get; init; }

    /// <summary>berthd's log_level: debug for tests, whose failures print the log; info for hack/bench, as on a node.</summary>
    public string LogLevel { get; init; } = "debug";
}
