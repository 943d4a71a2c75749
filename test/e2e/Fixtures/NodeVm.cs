using System.Diagnostics;
using System.Text;
using Berth.Cri.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>What the guest's berthd is configured with beyond its paths.</summary>
public sealed record NodeVmOptions
{
    /// <summary>A registry on this machine's loopback that the guest reaches at the same address (127.0.0.1:port).</summary>
    public int? RegistryPort { get; init; }

    /// <summary>TOML appended to the guest berthd's config.</summary>
    public string ExtraConfig { get; init; } = "";

    /// <summary>systemd as the guest's PID 1, and berthd started by it from the shipped berth.service.</summary>
    public bool Systemd { get; init; }

    /// <summary>
    /// hack/package's .deb, installed with <c>dpkg -i</c> in a guest with systemd as PID 1 (so it implies
    /// <see cref="Systemd"/>): berthd on the packaged config, with <see cref="ExtraConfig"/> as a config.d drop-in.
    /// </summary>
    public string? Package { get; init; }

    /// <summary>More guest TCP ports forwarded from this machine's loopback, for what else a caller runs there (<see cref="NodeVm.ChannelTo"/>).</summary>
    public IReadOnlyList<int> ForwardedPorts { get; init; } = [];

    /// <summary>Shell lines the guest runs before berthd starts, for what else a caller runs there; they must not block.</summary>
    public string GuestCommands { get; init; } = "";
}

/// <summary>
/// A berthd in a pure cgroup v2 guest booted by hack/node-vm (Debian's kernel under qemu's software emulation),
/// reached through its CRI socket: the guest relays 127.0.0.1:10010 to the socket, and qemu forwards a loopback
/// port of this machine to it. The guest's own loopback reaches a registry on this machine's loopback through
/// qemu (guestfwd), so the guest talks to nothing but this machine's 127.0.0.1. Everything the guest writes is in
/// its memory; disposing kills qemu, and nothing is left on this machine but the files of <see cref="Directory"/>,
/// which go too.
/// </summary>
public sealed class NodeVm : IAsyncDisposable
{
    private const int GuestCriPort = 10010;
    private const int GuestShellPort = 10011;
    private readonly int _shellPort;
    private readonly Process _qemu;
    private readonly StringBuilder _qemuOutput;

    private readonly IReadOnlyDictionary<int, int> _forwards;

    private NodeVm(string directory, Process qemu, StringBuilder qemuOutput, int criPort, int shellPort, IReadOnlyDictionary<int, int> forwards)
    {
        _shellPort = shellPort;
        _forwards = forwards;
        Directory = directory;
        _qemu = qemu;
        _qemuOutput = qemuOutput;
        Channel = GrpcChannel.ForAddress($"http://127.0.0.1:{criPort}");
        Runtime = new RuntimeService.RuntimeServiceClient(Channel);
        Images = new ImageService.ImageServiceClient(Channel);
    }

    /// <summary>Shared with the guest at the same path: the guest script, berthd's config, the console log, and the disk image of berthd's root.</summary>
    public string Directory { get; }

    public GrpcChannel Channel { get; }
    public RuntimeService.RuntimeServiceClient Runtime { get; }
    public ImageService.ImageServiceClient Images { get; }

    /// <summary>The guest's serial console (the kernel, the guest script, berthd's log).</summary>
    public string Console => File.Exists(ConsolePath) ? File.ReadAllText(ConsolePath) : "";

    private string ConsolePath => Path.Combine(Directory, "console.log");

    public static async Task<NodeVm> StartAsync(NodeVmOptions options)
    {
        TestEnvironment.RequireRoot();
        TestEnvironment.RequireTool("/usr/bin/qemu-system-x86_64", "qemu-system-x86");
        TestEnvironment.RequireTool("/usr/bin/socat", "socat");
        var berthd = TestEnvironment.Berthd;
        // Under /tmp, which the guest sees as this machine has it (its /run and berthd's root are its own tmpfs).
        var directory = System.IO.Directory.CreateTempSubdirectory("berth-node-").FullName;
        var criPort = RegistryServer.FreePort();
        var config = new StringBuilder();
        config.AppendLine("root = \"/var/lib/berth\"");
        config.AppendLine("state = \"/run/berth\"");
        config.AppendLine("log_level = \"debug\"");
        config.AppendLine("[grpc]");
        config.AppendLine("socket = \"/run/berth/berth.sock\"");
        config.Append(options.ExtraConfig);
        await File.WriteAllTextAsync(Path.Combine(directory, "config.toml"), config.ToString());
        await File.WriteAllTextAsync(Path.Combine(directory, "50-test.toml"), options.ExtraConfig);

        var shellPort = RegistryServer.FreePort();
        var relays = $"""
            socat -t 600 TCP-LISTEN:{GuestShellPort},fork,reuseaddr EXEC:/bin/sh,stderr &
            {(options.RegistryPort is { } port ? $"socat TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr TCP:10.0.2.100:{port} &" : "")}
            {options.GuestCommands}
            """;
        var repo = TestEnvironment.RepoRoot;
        await File.WriteAllTextAsync(Path.Combine(directory, "guest.sh"), options.Package is { } package
            ? $"""
              # The guest's side as a new node's operator has it: the package installed (its postinst enables and
              # starts berth.service), with the test's keys as a drop-in, and without the default dependencies this
              # guest's minimal boot does not have.
              {relays}
              mkdir -p /etc/systemd/system/berth.service.d /etc/berth/config.d
              printf '[Unit]\nDefaultDependencies=no\n' >/etc/systemd/system/berth.service.d/test.conf
              cp "{directory}/50-test.toml" /etc/berth/config.d/
              if ! dpkg -i "{package}"; then systemctl status berth --no-pager; exit 1; fi
              echo "node-vm: berth.service is $(systemctl is-active berth)"
              socat TCP-LISTEN:{GuestCriPort},fork,reuseaddr UNIX-CONNECT:/run/berth/berth.sock &
              wait
              """
            : options.Systemd
            ? $"""
              # The guest's side under systemd: installed as an operator would (hack/install-service), with the test's
              # config, and without the default dependencies this guest's minimal boot does not have.
              {relays}
              "{repo}/hack/install-service"
              mkdir -p /etc/systemd/system/berth.service.d
              printf '[Unit]\nDefaultDependencies=no\n[Service]\nExecStartPre=\nExecStart=\nExecStart=/usr/local/bin/berthd --config {directory}/config.toml\n' \
                  >/etc/systemd/system/berth.service.d/test.conf
              systemctl daemon-reload
              # Type=notify: this returns once berthd sent READY=1.
              if ! systemctl start berth; then systemctl status berth --no-pager; exit 1; fi
              echo "node-vm: berth.service is $(systemctl is-active berth)"
              socat TCP-LISTEN:{GuestCriPort},fork,reuseaddr UNIX-CONNECT:/run/berth/berth.sock &
              wait
              """
            : $"""
              # The guest's side: berthd on its socket, the socket relayed to TCP for this machine once it is there,
              # a shell for the tests, and the registry's relay. berthd is started again when it exits, as a
              # service manager would, a few times; then the guest powers off.
              {relays}
              for start in 1 2 3 4 5; do
                  "{berthd}" --config "{directory}/config.toml" 2>&1 &
                  berthd=$!
                  if [ $start = 1 ]; then
                      while [ ! -S /run/berth/berth.sock ]; do
                          kill -0 $berthd 2>/dev/null || break
                          sleep 0.2
                      done
                      socat TCP-LISTEN:{GuestCriPort},fork,reuseaddr UNIX-CONNECT:/run/berth/berth.sock &
                  fi
                  wait $berthd
                  echo "node-vm: berthd exited with $?"
              done
              """);

        var start = new ProcessStartInfo(Path.Combine(TestEnvironment.RepoRoot, "hack", "node-vm"))
        {
            ArgumentList =
            {
                "--memory", "2048", "--cpus", "2", "--forward", $"{criPort}:{GuestCriPort}", "--forward", $"{shellPort}:{GuestShellPort}",
                "--console", Path.Combine(directory, "console.log"),
                "--disk", Path.Combine(directory, "root.img"),
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var forwards = options.ForwardedPorts.ToDictionary(port => port, _ => RegistryServer.FreePort());
        foreach (var (guestPort, hostPort) in forwards)
        {
            start.ArgumentList.Add("--forward");
            start.ArgumentList.Add($"{hostPort}:{guestPort}");
        }
        if (options.Systemd || options.Package is not null) start.ArgumentList.Add("--systemd");
        if (options.RegistryPort is { } registryPort)
        {
            start.ArgumentList.Add("--guest-forward");
            start.ArgumentList.Add($"{registryPort}");
        }
        start.ArgumentList.Add(Path.Combine(directory, "guest.sh"));
        var output = new StringBuilder();
        var qemu = Process.Start(start) ?? throw new InvalidOperationException("hack/node-vm did not start");
        qemu.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        qemu.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        qemu.BeginOutputReadLine();
        qemu.BeginErrorReadLine();
        var vm = new NodeVm(directory, qemu, output, criPort, shellPort, forwards);
        try
        {
            await vm.WaitServingAsync(TimeSpan.FromMinutes(3));
        }
        catch
        {
            await vm.DisposeAsync();
            throw;
        }
        return vm;
    }

    /// <summary>Until berthd in the guest answers Version through the forwarded socket.</summary>
    public async Task WaitServingAsync(TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (_qemu.HasExited) throw new InvalidOperationException($"the guest stopped before berthd answered:\n{Describe()}");
            try
            {
                using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await Runtime.VersionAsync(new VersionRequest(), cancellationToken: attempt.Token);
                return;
            }
            catch (RpcException) when (watch.Elapsed < timeout)
            {
                await Task.Delay(500);
            }
            catch (RpcException e)
            {
                throw new TimeoutException($"berthd in the guest did not answer within {timeout.TotalSeconds:0} s ({e.Status.Detail}):\n{Describe()}");
            }
        }
    }

    /// <summary>A gRPC channel to a guest port given in <see cref="NodeVmOptions.ForwardedPorts"/>.</summary>
    public GrpcChannel ChannelTo(int guestPort) => GrpcChannel.ForAddress($"http://127.0.0.1:{_forwards[guestPort]}");

    /// <summary>Runs a shell command in the guest (as root, outside any container); returns its output, stderr included.</summary>
    public async Task<string> ShellAsync(string command, TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, _shellPort, cancel.Token);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(command + "\n"), cancel.Token);
        client.Client.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return (await reader.ReadToEndAsync(cancel.Token)).Trim();
    }

    /// <summary>The guest console's last lines and qemu's own output, for failure messages.</summary>
    public string Describe()
    {
        var console = Console.Split('\n');
        lock (_qemuOutput) return $"console (last 60 lines):\n{string.Join('\n', console.TakeLast(60))}\nqemu:\n{_qemuOutput}";
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        if (!_qemu.HasExited)
        {
            _qemu.Kill(entireProcessTree: true);
            await _qemu.WaitForExitAsync();
        }
        _qemu.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
