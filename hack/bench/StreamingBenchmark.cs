using System.Diagnostics;
using System.Net.Sockets;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// Streaming on berthd and on containerd 1.6, in one run, through the same SPDY client: the round trip of an exec of
/// <c>true</c> (Exec RPC, upgrade, streams, the command, the status), and port-forward throughput to an echo server
/// in a host-network pod, next to a direct loopback TCP connection to the same server and to a plain TCP relay
/// (socat, a separate process copying 64 KiB at a time): the least any forwarder that adds a hop can cost here.
/// </summary>
internal static class StreamingBenchmark
{
    private const int Megabytes = 64;
    private const int Rounds = 7;

    public static async Task<string> RunAsync(int execs)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        var image = await BenchImage.PushSleeperAsync(registry);

        await using var berth = await BerthDaemon.StartAsync();
        await using var containerd = await ContainerdDaemon.StartAsync(registry.Host, sandboxImage: image);
        var b = await MeasureAsync("berth", berth.Runtime, berth.Images, image, execs, 7101);
        Result c;
        try
        {
            c = await MeasureAsync("containerd", containerd.Runtime, containerd.Images, image, execs, 7102);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"containerd: {e}");
            throw;
        }
        return $"""
            Streaming through the same SPDY client ({execs} execs of `true`; {Megabytes} MiB echoed through one port-forward stream, median of {Rounds} rounds after two untimed ones):
                                            berth p50   p99   | containerd p50   p99   | ratio p50
              Exec round trip (ms)        {P(b.Exec, 50),7:F1} {P(b.Exec, 99),6:F1} |       {P(c.Exec, 50),7:F1} {P(c.Exec, 99),6:F1} | {P(b.Exec, 50) / P(c.Exec, 50):F2}
                                            berth | containerd
              port-forward (MB/s)         {b.Forward,7:F0} | {c.Forward,7:F0}
              direct loopback TCP (MB/s)  {b.Direct,7:F0} | {c.Direct,7:F0}
              plain TCP relay (MB/s)      {b.Relay,7:F0} | {c.Relay,7:F0}
              port-forward / direct       {b.Forward / b.Direct,7:F2} | {c.Forward / c.Direct,7:F2}
              relay / direct              {b.Relay / b.Direct,7:F2} | {c.Relay / c.Direct,7:F2}
              port-forward / relay        {b.Forward / b.Relay,7:F2} | {c.Forward / c.Relay,7:F2}
            """;
    }

    private sealed record Result(List<double> Exec, double Forward, double Direct, double Relay);

    private static async Task<Result> MeasureAsync(
        string name, RuntimeService.RuntimeServiceClient runtime, ImageService.ImageServiceClient images, string image, int execs, int port)
    {
        await images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var pod = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = $"{name}-stream", Namespace = "bench", Uid = Guid.NewGuid().ToString() },
            Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } } },
        };
        var podId = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
        try
        {
            async Task<string> Run(string container, params string[] command)
            {
                var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = container }, Image = new ImageSpec { Image = image } };
                config.Command.AddRange(command);
                var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
                await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
                return id;
            }
            var sleeper = await Run("sleeper", "/bin/busybox", "sleep", "3600");
            await Run("echo", "/bin/busybox", "nc", "-ll", "-p", $"{port}", "-e", "/bin/busybox", "cat");
            await Task.Delay(1000);

            var exec = new List<double>();
            for (var i = 0; i < execs + 5; i++)
            {
                var watch = Stopwatch.StartNew();
                var request = new ExecRequest { ContainerId = sleeper, Stdout = true };
                request.Cmd.Add("/bin/busybox");
                request.Cmd.Add("true");
                var url = (await runtime.ExecAsync(request)).Url;
                var (client, status, body) = await SpdyTestClient.ConnectAsync(url, "v4.channel.k8s.io");
                if (client is null) throw new InvalidOperationException($"{name}: exec upgrade refused ({status}): {body}");
                await using (client)
                {
                    var error = await client.OpenAsync(("streamType", "error"));
                    var stdout = await client.OpenAsync(("streamType", "stdout"));
                    await stdout.ReadToEndAsync();
                    var outcome = await error.ReadTextToEndAsync();
                    if (outcome.Length > 0 && !outcome.Contains("Success", StringComparison.Ordinal))
                        throw new InvalidOperationException($"{name}: exec failed: {outcome}");
                }
                if (i >= 5) exec.Add(watch.Elapsed.TotalMilliseconds);
            }

            // socat relays to the same server from its own port: one process, one hop, no framing.
            var relayPort = port + 100;
            using var relay = Process.Start(new ProcessStartInfo("socat",
                ["-b", "65536", $"TCP-LISTEN:{relayPort},bind=127.0.0.1,reuseaddr,fork", $"TCP:127.0.0.1:{port}"]))
                ?? throw new InvalidOperationException("socat did not start");
            try
            {
                await WaitForListenerAsync(relayPort);
                // Two untimed rounds each first: the first ones ran at half speed on every path, the direct one too.
                for (var round = 0; round < 2; round++)
                {
                    await ForwardAsync(name, runtime, podId, port, Megabytes);
                    await DirectAsync(name, port, Megabytes);
                    await DirectAsync(name, relayPort, Megabytes);
                }
                var forwards = new List<double>();
                var directs = new List<double>();
                var relays = new List<double>();
                for (var round = 0; round < Rounds; round++)
                {
                    forwards.Add(await ForwardAsync(name, runtime, podId, port, Megabytes));
                    directs.Add(await DirectAsync(name, port, Megabytes));
                    relays.Add(await DirectAsync(name, relayPort, Megabytes));
                }
                return new Result(exec, P(forwards, 50), P(directs, 50), P(relays, 50));
            }
            finally
            {
                relay.Kill(entireProcessTree: true);
                await relay.WaitForExitAsync();
            }
        }
        finally
        {
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        }
    }

    private static async Task WaitForListenerAsync(int port)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", port);
                return;
            }
            catch (SocketException) when (attempt < 50)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>MB/s of <paramref name="megabytes"/> echoed through one port-forward data stream.</summary>
    private static async Task<double> ForwardAsync(string name, RuntimeService.RuntimeServiceClient runtime, string podId, int port, int megabytes)
    {
        var request = new PortForwardRequest { PodSandboxId = podId };
        request.Port.Add(port);
        var (forwarder, status, body) = await SpdyTestClient.ConnectAsync((await runtime.PortForwardAsync(request)).Url, "portforward.k8s.io");
        if (forwarder is null) throw new InvalidOperationException($"{name}: port-forward upgrade refused ({status}): {body}");
        await using (forwarder)
        {
            var errorStream = await forwarder.OpenAsync(("streamType", "error"), ("port", $"{port}"), ("requestID", "0"));
            await errorStream.CloseAsync();
            var data = await forwarder.OpenAsync(("streamType", "data"), ("port", $"{port}"), ("requestID", "0"));
            var payload = new byte[megabytes << 20];
            var watch = Stopwatch.StartNew();
            // Counted, not kept, as the direct reader does.
            var echoed = data.CountToEndAsync(TimeSpan.FromMinutes(5));
            await data.WriteAsync(payload);
            await data.CloseAsync();
            var back = await echoed;
            var rate = megabytes / watch.Elapsed.TotalSeconds;
            if (back != payload.Length) throw new InvalidOperationException($"{name}: {back} bytes came back, not {payload.Length}");
            return rate;
        }
    }

    /// <summary>MB/s of <paramref name="megabytes"/> echoed by the server on <paramref name="port"/> of 127.0.0.1, directly or through the relay.</summary>
    private static async Task<double> DirectAsync(string name, int port, int megabytes)
    {
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        var stream = tcp.GetStream();
        var payload = new byte[megabytes << 20];
        var watch = Stopwatch.StartNew();
        var reader = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            long total = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0) total += read;
            return total;
        });
        await stream.WriteAsync(payload);
        tcp.Client.Shutdown(SocketShutdown.Send);
        var received = await reader;
        var rate = megabytes / watch.Elapsed.TotalSeconds;
        if (received != payload.Length) throw new InvalidOperationException($"{name}: {received} bytes came back directly");
        return rate;
    }

    private static double P(List<double> values, int percentile) => Percentile.Of(values, percentile);
}
