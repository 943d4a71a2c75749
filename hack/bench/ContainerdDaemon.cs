using System.Diagnostics;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Net.Client;

namespace Berth.Bench;

/// <summary>Debian's containerd 1.6 on a private root, state and socket, configured like a node for the benchmark.</summary>
internal sealed class ContainerdDaemon : IAsyncDisposable
{
    private readonly Process _process;

    private ContainerdDaemon(string directory, Process process)
    {
        Directory = directory;
        _process = process;
        Channel = BerthDaemon.CreateChannel(SocketPath);
        Runtime = new RuntimeService.RuntimeServiceClient(Channel);
        Images = new ImageService.ImageServiceClient(Channel);
    }

    public string Directory { get; }
    public string SocketPath => Path.Combine(Directory, "containerd.sock");
    public GrpcChannel Channel { get; }
    public RuntimeService.RuntimeServiceClient Runtime { get; }
    public ImageService.ImageServiceClient Images { get; }
    public int Pid => _process.Id;

    public static async Task<ContainerdDaemon> StartAsync(string registryHost, string? cniConfDir = null, string? sandboxImage = null)
    {
        var binary = TestEnvironment.RequireTool("/usr/bin/containerd", "containerd");
        var directory = System.IO.Directory.CreateTempSubdirectory("berth-bench-ctd-").FullName;
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "cni"));
        cniConfDir ??= Path.Combine(directory, "cni");
        var config = Path.Combine(directory, "config.toml");
        await File.WriteAllTextAsync(config, Config(directory, $"{directory}/root", $"{directory}/state", registryHost, cniConfDir, sandboxImage));
        var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        info.ArgumentList.Add("--config");
        info.ArgumentList.Add(config);
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var daemon = new ContainerdDaemon(directory, process);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await daemon.Runtime.VersionAsync(new VersionRequest(), deadline: DateTime.UtcNow.AddSeconds(2));
                return daemon;
            }
            catch (Grpc.Core.RpcException) when (deadline.Elapsed < TimeSpan.FromSeconds(30) && !process.HasExited)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>
    /// containerd's config: its paths, the CRI plugin as on a node (the sandbox image, CNI, the benchmark registry
    /// as a plain-HTTP mirror), and a crun handler beside runc, both through containerd-shim-runc-v2.
    /// </summary>
    public static string Config(string directory, string root, string state, string registryHost, string cniConfDir, string? sandboxImage) => $"""
        version = 2
        root = "{root}"
        state = "{state}"
        [grpc]
          address = "{directory}/containerd.sock"
        [ttrpc]
          address = "{directory}/containerd.sock.ttrpc"
        [plugins."io.containerd.grpc.v1.cri"]
          restrict_oom_score_adj = true
          sandbox_image = "{sandboxImage ?? "registry.k8s.io/pause:3.6"}"
          # A runtimes table replaces containerd's default one, so runc is named too.
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
            runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
            runtime_type = "io.containerd.runc.v2"
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
              BinaryName = "/usr/bin/crun"
          [plugins."io.containerd.grpc.v1.cri".cni]
            bin_dir = "/usr/lib/cni"
            conf_dir = "{cniConfDir}"
          [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registryHost}"]
            endpoint = ["http://{registryHost}"]
        """;

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        // Sandboxes were removed through CRI, so nothing should be mounted; after a failure, something may be.
        foreach (var mount in Host.MountsUnder(Directory).Reverse()) Host.Run("umount", "-l", mount);
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
