using System.Diagnostics;
using System.Net.Sockets;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// Streaming on berthd and on containerd 1.6, in one run, through the same SPDY client: the round trip of an exec of
/// <c>true</c> (Exec RPC, upgrade, streams, the command, the status), and port-forward throughput to an echo server
/// in a host-network pod, next to a direct loopback TCP connection to the same server.
/// </summary>
internal static class StreamingBenchmark
{
    private const int Megabytes = 64;

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
            Streaming through the same SPDY client ({execs} execs of `true`; {Megabytes} MiB echoed through one port-forward stream):
                                            berth p50   p99   | containerd p50   p99   | ratio p50
              Exec round trip (ms)        {P(b.Exec, 50),7:F1} {P(b.Exec, 99),6:F1} |       {P(c.Exec, 50),7:F1} {P(c.Exec, 99),6:F1} | {P(b.Exec, 50) / P(c.Exec, 50):F2}
                                            berth | containerd
              port-forward (MB/s)         {b.Forward,7:F0} | {c.Forward,7:F0}
              direct loopback TCP (MB/s)  {b.Direct,7:F0} | {c.Direct,7:F0}
              port-forward / direct       {b.Forward / b.Direct,7:F2} | {c.Forward / c.Direct,7:F2}
            """;
    }

    private sealed record Result(List<double> Exec, double Forward, double Direct);

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

            var forwardRequest = new PortForwardRequest { PodSandboxId = podId };
            forwardRequest.Port.Add(port);
            var (forwarder, fstatus, fbody) = await SpdyTestClient.ConnectAsync((await runtime.PortForwardAsync(forwardRequest)).Url, "portforward.k8s.io");
            if (forwarder is null) throw new InvalidOperationException($"{name}: port-forward upgrade refused ({fstatus}): {fbody}");
            double forward;
            await using (forwarder)
            {
                var errorStream = await forwarder.OpenAsync(("streamType", "error"), ("port", $"{port}"), ("requestID", "0"));
                await errorStream.CloseAsync();
                var data = await forwarder.OpenAsync(("streamType", "data"), ("port", $"{port}"), ("requestID", "0"));
                var payload = new byte[Megabytes << 20];
                var watch = Stopwatch.StartNew();
                var echoed = data.ReadToEndAsync(TimeSpan.FromMinutes(5));
                await data.WriteAsync(payload);
                await data.CloseAsync();
                var back = await echoed;
                forward = Megabytes / watch.Elapsed.TotalSeconds;
                if (back.Length != payload.Length) throw new InvalidOperationException($"{name}: {back.Length} bytes came back, not {payload.Length}");
            }

            double direct;
            using (var tcp = new TcpClient())
            {
                await tcp.ConnectAsync("127.0.0.1", port);
                var stream = tcp.GetStream();
                var payload = new byte[Megabytes << 20];
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
                var total = await reader;
                direct = Megabytes / watch.Elapsed.TotalSeconds;
                if (total != payload.Length) throw new InvalidOperationException($"{name}: {total} bytes came back directly");
            }
            return new Result(exec, forward, direct);
        }
        finally
        {
            await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        }
    }

    private static double P(List<double> values, int percentile) => Percentile.Of(values, percentile);
}
