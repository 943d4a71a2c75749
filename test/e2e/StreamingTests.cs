using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// Exec, attach and port-forward through the URLs berthd hands out, spoken by the tests' own SPDY client and by
/// .NET's WebSocket client, against real containers.
/// </summary>
public sealed class StreamingTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private const string V4 = "v4.channel.k8s.io";

    private async Task<(string PodId, string ContainerId)> RunAsync(string name, ContainerConfig? container = null, bool hostNetwork = true)
    {
        var pod = bed.Pod(name, hostNetwork);
        var podId = await bed.RunPodAsync(pod);
        var id = await bed.RunAsync(podId, pod, container ?? bed.Container(name, "sleep", "3600"));
        return (podId, id);
    }

    private async Task<string> ExecUrl(string id, bool stdin, bool stdout, bool stderr, bool tty, params string[] command)
    {
        var request = new ExecRequest { ContainerId = id, Stdin = stdin, Stdout = stdout, Stderr = stderr, Tty = tty };
        request.Cmd.AddRange(command);
        return (await bed.Daemon.Runtime.ExecAsync(request)).Url;
    }

    private static async Task<SpdyTestClient> Connect(string url, params string[] protocols)
    {
        var (client, status, body) = await SpdyTestClient.ConnectAsync(url, protocols.Length == 0 ? [V4] : protocols);
        Assert.True(client is not null, $"upgrade refused with {status}: {body}");
        return client;
    }

    private static JsonElement Status(string json) => JsonDocument.Parse(json).RootElement;

    [Fact]
    public async Task Exec_echo_returns_stdout_and_a_Success_status()
    {
        var (podId, id) = await RunAsync("exec-echo");
        try
        {
            var url = await ExecUrl(id, false, true, true, false, "echo", "hello from exec");
            Assert.StartsWith("http://127.0.0.1:", url);
            await using var client = await Connect(url, "v5.channel.k8s.io", V4, "v3.channel.k8s.io");
            Assert.Equal(V4, client.Protocol); // v5 is WebSocket-only
            var error = await client.OpenAsync(("streamType", "error"));
            var stdout = await client.OpenAsync(("streamType", "stdout"));
            var stderr = await client.OpenAsync(("streamType", "stderr"));
            Assert.Equal("hello from exec\n", await stdout.ReadTextToEndAsync());
            Assert.Equal("", await stderr.ReadTextToEndAsync());
            Assert.Equal("Success", Status(await error.ReadTextToEndAsync()).GetProperty("status").GetString());
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Exec_exit_7_is_a_NonZeroExitCode_status_with_the_code()
    {
        var (podId, id) = await RunAsync("exec-exit");
        try
        {
            await using var client = await Connect(await ExecUrl(id, false, true, true, false, "sh", "-c", "echo to-stderr >&2; exit 7"));
            var error = await client.OpenAsync(("streamType", "error"));
            var stdout = await client.OpenAsync(("streamType", "stdout"));
            var stderr = await client.OpenAsync(("streamType", "stderr"));
            Assert.Equal("to-stderr\n", await stderr.ReadTextToEndAsync());
            Assert.Equal("", await stdout.ReadTextToEndAsync());
            var status = Status(await error.ReadTextToEndAsync());
            Assert.Equal("Failure", status.GetProperty("status").GetString());
            Assert.Equal("NonZeroExitCode", status.GetProperty("reason").GetString());
            var cause = Assert.Single(status.GetProperty("details").GetProperty("causes").EnumerateArray());
            Assert.Equal(("ExitCode", "7"), (cause.GetProperty("reason").GetString(), cause.GetProperty("message").GetString()));

            // The same over v3: no JSON, the failure as text.
            await using var old = await Connect(await ExecUrl(id, false, true, false, false, "sh", "-c", "exit 7"), "v3.channel.k8s.io");
            Assert.Equal("v3.channel.k8s.io", old.Protocol);
            var oldError = await old.OpenAsync(("streamType", "error"));
            var oldStdout = await old.OpenAsync(("streamType", "stdout"));
            await oldStdout.ReadToEndAsync();
            Assert.Contains("non-zero exit code", await oldError.ReadTextToEndAsync());
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Exec_reads_stdin_to_its_end()
    {
        var (podId, id) = await RunAsync("exec-stdin");
        try
        {
            await using var client = await Connect(await ExecUrl(id, true, true, false, false, "sh", "-c", "wc -c; echo done"));
            var error = await client.OpenAsync(("streamType", "error"));
            var stdin = await client.OpenAsync(("streamType", "stdin"));
            var stdout = await client.OpenAsync(("streamType", "stdout"));
            var payload = RandomNumberGenerator.GetBytes(300_000); // several windows' worth
            await stdin.WriteAsync(payload);
            await stdin.CloseAsync();
            Assert.Equal("300000\ndone\n", await stdout.ReadTextToEndAsync());
            Assert.Equal("Success", Status(await error.ReadTextToEndAsync()).GetProperty("status").GetString());
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Exec_with_a_tty_follows_resizes()
    {
        var (podId, id) = await RunAsync("exec-tty");
        try
        {
            await using var client = await Connect(await ExecUrl(id, true, true, false, true, "sh"));
            var error = await client.OpenAsync(("streamType", "error"));
            var stdin = await client.OpenAsync(("streamType", "stdin"));
            var stdout = await client.OpenAsync(("streamType", "stdout"));
            var resize = await client.OpenAsync(("streamType", "resize"));
            await resize.WriteAsync("{\"Width\":123,\"Height\":45}\n");
            await Task.Delay(500);
            await stdin.WriteAsync("stty size; tty\n");
            var seen = await stdout.ReadUntilAsync("/dev/pts/");
            Assert.Contains("45 123", seen);
            await resize.WriteAsync("{\"Width\":90,\"Height\":30}\n");
            await Task.Delay(500);
            await stdin.WriteAsync("stty size; exit 4\n");
            Assert.Contains("30 90", await stdout.ReadTextToEndAsync());
            var status = Status(await error.ReadTextToEndAsync());
            Assert.Equal("4", status.GetProperty("details").GetProperty("causes")[0].GetProperty("message").GetString());
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_client_killed_mid_exec_leaves_no_process_behind()
    {
        var (podId, id) = await RunAsync("exec-killed");
        try
        {
            var client = await Connect(await ExecUrl(id, false, true, false, false, "sleep", "4343"));
            await client.OpenAsync(("streamType", "error"));
            await client.OpenAsync(("streamType", "stdout"));
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!Sleeping4343() && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.True(Sleeping4343(), "the exec'd process never started");
            client.Abort();
            deadline = DateTime.UtcNow.AddSeconds(15);
            while (Sleeping4343() && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.False(Sleeping4343(), "sleep 4343 outlived its client");
            // The container itself is untouched.
            Assert.Equal(ContainerState.ContainerRunning, (await bed.StatusAsync(id)).State);
            await client.DisposeAsync();
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }

        static bool Sleeping4343() => Directory.EnumerateDirectories("/proc").Any(d =>
        {
            try
            {
                return File.ReadAllText(Path.Combine(d, "cmdline")) == "sleep\04343\0";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        });
    }

    [Fact]
    public async Task Attach_feeds_stdin_to_a_cat_container_and_returns_its_output()
    {
        var config = bed.Container("attach-cat", "cat");
        config.Stdin = true;
        config.StdinOnce = true;
        var (podId, id) = await RunAsync("attach", config);
        try
        {
            var url = (await bed.Daemon.Runtime.AttachAsync(new AttachRequest { ContainerId = id, Stdin = true, Stdout = true, Stderr = true })).Url;
            await using var client = await Connect(url);
            var error = await client.OpenAsync(("streamType", "error"));
            var stdin = await client.OpenAsync(("streamType", "stdin"));
            var stdout = await client.OpenAsync(("streamType", "stdout"));
            var stderr = await client.OpenAsync(("streamType", "stderr"));
            await stdin.WriteAsync("first line\n");
            Assert.Contains("first line", await stdout.ReadUntilAsync("first line"));
            await stdin.WriteAsync("second line\n");
            await stdin.CloseAsync(); // stdin_once: cat sees its end and exits
            Assert.Contains("second line", await stdout.ReadTextToEndAsync());
            await stderr.ReadToEndAsync();
            Assert.Equal("Success", Status(await error.ReadTextToEndAsync()).GetProperty("status").GetString());
            Assert.Equal(0, (await bed.WaitExitedAsync(id)).ExitCode);
            Assert.Contains("stdout F second line", await File.ReadAllTextAsync(Path.Combine(bed.LogDirectory("attach"), "attach-cat.log")));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_container_serves_at_most_sixteen_attach_clients()
    {
        var (podId, id) = await RunAsync("attach-many", bed.Container("quiet", "sleep", "3600"));
        var clients = new List<System.Net.Sockets.Socket>();
        try
        {
            var socket = Path.Combine(bed.Daemon.Directory, "state", "c", id, "attach.sock");
            async Task<System.Net.Sockets.Socket> ConnectRaw()
            {
                var client = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                await client.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
                clients.Add(client);
                return client;
            }
            for (var i = 0; i < 16; i++) await ConnectRaw();
            var refused = await ConnectRaw();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            Assert.Equal(0, await refused.ReceiveAsync(new byte[16], System.Net.Sockets.SocketFlags.None, timeout.Token)); // closed by the shim
            Assert.Contains("attach client refused: 16 are attached already", await File.ReadAllTextAsync(Path.Combine(bed.Daemon.Directory, "state", "c", id, "shim.log")));
            // One leaves, and the next is served through CRI as usual.
            clients[0].Dispose();
            await Task.Delay(200);
            var url = (await bed.Daemon.Runtime.AttachAsync(new AttachRequest { ContainerId = id, Stdout = true })).Url;
            await using var attached = await Connect(url);
            await attached.OpenAsync(("streamType", "error"));
            await attached.OpenAsync(("streamType", "stdout"));
        }
        finally
        {
            foreach (var client in clients) client.Dispose();
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task An_attach_client_that_stops_reading_holds_up_neither_the_log_nor_other_clients()
    {
        // About 2 MB of output, after time for both clients to connect.
        var (podId, id) = await RunAsync("attach-stall", bed.Container("talker", "sh", "-c", "sleep 3; seq 1 300000; echo the-end; sleep 3600"));
        try
        {
            // A client of the shim's attach socket that never reads (what a stuck connection looks like to the shim).
            using var stalled = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            var bundle = Path.Combine(bed.Daemon.Directory, "state", "c", id);
            await stalled.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(bundle, "attach.sock")));
            var url = (await bed.Daemon.Runtime.AttachAsync(new AttachRequest { ContainerId = id, Stdout = true })).Url;
            await using var reader = await Connect(url);
            await reader.OpenAsync(("streamType", "error"));
            var stdout = await reader.OpenAsync(("streamType", "stdout"));

            Assert.Contains("300000\nthe-end", await stdout.ReadUntilAsync("the-end", TimeSpan.FromSeconds(60)));
            var log = Path.Combine(bed.LogDirectory("attach-stall"), "talker.log");
            await Until(async () => (await File.ReadAllTextAsync(log)).Contains("stdout F the-end", StringComparison.Ordinal), TimeSpan.FromSeconds(30));

            // The stalled client was cut off once it was 1 MiB behind: what its socket holds, then the end.
            var received = 0;
            var buffer = new byte[64 * 1024];
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            int read;
            while ((read = await stalled.ReceiveAsync(buffer, deadline.Token)) > 0) received += read;
            Assert.InRange(received, 1, 2_000_000);
            Assert.Contains("attach client dropped", await File.ReadAllTextAsync(Path.Combine(bundle, "shim.log")), StringComparison.Ordinal);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    private static async Task Until(Func<Task<bool>> condition, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (!await condition()) await Task.Delay(100, deadline.Token);
    }

    [Fact]
    public async Task Port_forward_carries_10_MiB_both_ways_over_20_concurrent_streams()
    {
        // Echo servers inside the pod's own network namespace (not the host's), one per port: busybox nc listens
        // with a backlog of one, and 20 connections at once to one of them would wait on SYN retransmits.
        var (podId, id) = await RunAsync("pf", bed.Container("echo", "sh", "-c", "for p in $(seq 7000 7019); do nc -ll -p $p -e cat & done; wait"), hostNetwork: false);
        try
        {
            for (var port = 7000; port < 7020; port++) await WaitForListenerAsync(id, port);
            var request = new Cri.V1.PortForwardRequest { PodSandboxId = podId };
            request.Port.AddRange(Enumerable.Range(7000, 20));
            await using var client = await Connect((await bed.Daemon.Runtime.PortForwardAsync(request)).Url, "portforward.k8s.io");
            Assert.Equal("portforward.k8s.io", client.Protocol);
            var transfers = Enumerable.Range(0, 20).Select(async i =>
            {
                var port = $"{7000 + i}";
                var error = await client.OpenAsync(("streamType", "error"), ("port", port), ("requestID", $"{i}"));
                await error.CloseAsync();
                var data = await client.OpenAsync(("streamType", "data"), ("port", port), ("requestID", $"{i}"));
                var payload = RandomNumberGenerator.GetBytes(512 * 1024);
                var echoed = data.ReadToEndAsync(TimeSpan.FromMinutes(2));
                await data.WriteAsync(payload);
                await data.CloseAsync(); // half-close: cat sees EOF, exits, and the pod side closes
                Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await echoed));
                Assert.Equal("", await error.ReadTextToEndAsync());
            });
            await Task.WhenAll(transfers);

            // A port nobody listens on: the error stream says so.
            var failError = await client.OpenAsync(("streamType", "error"), ("port", "7999"), ("requestID", "x"));
            var failData = await client.OpenAsync(("streamType", "data"), ("port", "7999"), ("requestID", "x"));
            Assert.Contains("7999", await failError.ReadTextToEndAsync());
            await failData.ReadToEndAsync();
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Used_expired_and_forged_tokens_get_404()
    {
        var (podId, id) = await RunAsync("tokens");
        try
        {
            using var http = new HttpClient();
            var url = await ExecUrl(id, false, true, false, false, "true");
            await using (var client = await Connect(url))
            {
                var error = await client.OpenAsync(("streamType", "error"));
                await client.OpenAsync(("streamType", "stdout"));
                await error.ReadToEndAsync();
            }
            Assert.Equal(404, (await SpdyTestClient.ConnectAsync(url, V4)).Status);

            var expiring = await ExecUrl(id, false, true, false, false, "true");
            await Task.Delay(TimeSpan.FromSeconds(6)); // token_lifetime is 5s in this test bed
            Assert.Equal(404, (await SpdyTestClient.ConnectAsync(expiring, V4)).Status);

            var forged = url[..url.LastIndexOf('/')] + "/AAAAAAAAAAAAAAAAAAAAAA";
            Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync(forged, null)).StatusCode);
            // An attach token is not an exec token.
            var attach = (await bed.Daemon.Runtime.AttachAsync(new AttachRequest { ContainerId = id, Stdout = true })).Url;
            Assert.Equal(404, (await SpdyTestClient.ConnectAsync(attach.Replace("/attach/", "/exec/"), V4)).Status);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Bad_requests_get_precise_statuses()
    {
        var (podId, id) = await RunAsync("bad-stream");
        try
        {
            async Task<StatusCode> Code(Func<Task> call) => (await Assert.ThrowsAsync<RpcException>(call)).StatusCode;
            var unknown = new ExecRequest { ContainerId = "0123456789abcdef", Stdout = true };
            unknown.Cmd.Add("true");
            Assert.Equal(StatusCode.NotFound, await Code(() => bed.Daemon.Runtime.ExecAsync(unknown).ResponseAsync));
            Assert.Equal(StatusCode.InvalidArgument, await Code(() => ExecUrl(id, false, false, false, false, "true")));
            Assert.Equal(StatusCode.InvalidArgument, await Code(() => ExecUrl(id, true, true, true, true, "true")));
            Assert.Equal(StatusCode.InvalidArgument, await Code(() => bed.Daemon.Runtime.ExecAsync(new ExecRequest { ContainerId = id, Stdout = true }).ResponseAsync));
            Assert.Equal(StatusCode.FailedPrecondition, await Code(() => bed.Daemon.Runtime.AttachAsync(new AttachRequest { ContainerId = id, Stdin = true, Stdout = true }).ResponseAsync));
            var badPort = new Cri.V1.PortForwardRequest { PodSandboxId = podId };
            badPort.Port.Add(70000);
            Assert.Equal(StatusCode.InvalidArgument, await Code(() => bed.Daemon.Runtime.PortForwardAsync(badPort).ResponseAsync));
            Assert.Equal(StatusCode.NotFound, await Code(() => bed.Daemon.Runtime.PortForwardAsync(new Cri.V1.PortForwardRequest { PodSandboxId = "nope" }).ResponseAsync));

            var stopped = await bed.RunAsync(podId, bed.Pod("bad-stream", hostNetwork: true), bed.Container("quick", "true"));
            await bed.WaitExitedAsync(stopped);
            Assert.Equal(StatusCode.FailedPrecondition, await Code(() => ExecUrl(stopped, false, true, false, false, "true")));

            // A protocol the server does not speak is refused with the ones it does.
            var (refused, status, body) = await SpdyTestClient.ConnectAsync(await ExecUrl(id, false, true, false, false, "true"), "v9.channel.k8s.io");
            Assert.Null(refused);
            Assert.Equal(403, status);
            Assert.Contains("unable to negotiate protocol", body);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task WebSocket_v5_exec_ends_stdin_with_a_close_signal()
    {
        var (podId, id) = await RunAsync("ws-exec");
        try
        {
            using var socket = new ClientWebSocket();
            socket.Options.AddSubProtocol("v5.channel.k8s.io");
            socket.Options.AddSubProtocol(V4);
            var url = await ExecUrl(id, true, true, true, false, "sh", "-c", "cat; echo err >&2; exit 3");
            await socket.ConnectAsync(new Uri("ws" + url[4..]), CancellationToken.None);
            Assert.Equal("v5.channel.k8s.io", socket.SubProtocol);
            await socket.SendAsync(new byte[] { 0, (byte)'h', (byte)'i', (byte)'\n' }, WebSocketMessageType.Binary, true, CancellationToken.None);
            await socket.SendAsync(new byte[] { 255, 0 }, WebSocketMessageType.Binary, true, CancellationToken.None);
            var channels = await ReceiveAllAsync(socket);
            Assert.Equal("hi\n", channels.GetValueOrDefault((byte)1, ""));
            Assert.Equal("err\n", channels.GetValueOrDefault((byte)2, ""));
            var status = Status(channels[3]);
            Assert.Equal("3", status.GetProperty("details").GetProperty("causes")[0].GetProperty("message").GetString());
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task WebSocket_port_forward_prefixes_each_channel_with_its_port()
    {
        var (podId, id) = await RunAsync("ws-pf", bed.Container("echo", "nc", "-ll", "-p", "7001", "-e", "cat"), hostNetwork: false);
        try
        {
            await WaitForListenerAsync(id, 7001);
            var request = new Cri.V1.PortForwardRequest { PodSandboxId = podId };
            request.Port.Add(7001);
            using var socket = new ClientWebSocket();
            socket.Options.AddSubProtocol(V4);
            await socket.ConnectAsync(new Uri("ws" + (await bed.Daemon.Runtime.PortForwardAsync(request)).Url[4..]), CancellationToken.None);
            var first = await ReceiveMessageAsync(socket);
            var second = await ReceiveMessageAsync(socket);
            Assert.Equal(new byte[] { 0, 0x59, 0x1b }, first); // data channel, 7001 little-endian
            Assert.Equal(new byte[] { 1, 0x59, 0x1b }, second); // error channel
            await socket.SendAsync(new byte[] { 0, (byte)'p', (byte)'i', (byte)'n', (byte)'g' }, WebSocketMessageType.Binary, true, CancellationToken.None);
            var echoed = new StringBuilder();
            while (echoed.Length < 4)
            {
                var message = await ReceiveMessageAsync(socket);
                Assert.Equal(0, message[0]);
                echoed.Append(Encoding.ASCII.GetString(message, 1, message.Length - 1));
            }
            Assert.Equal("ping", echoed.ToString());
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task WebSocket_base64_exec_and_port_forward_carry_text_messages()
    {
        var (podId, id) = await RunAsync("ws-b64", bed.Container("echo", "nc", "-ll", "-p", "7002", "-e", "cat"), hostNetwork: false);
        try
        {
            // Exec: stdin in base64 on '0', output back on '1' and '2', the v4 Status on '3'.
            using (var exec = new ClientWebSocket())
            {
                exec.Options.AddSubProtocol("v4.base64.channel.k8s.io");
                var url = await ExecUrl(id, true, true, true, false, "sh", "-c", "head -c 3; echo err >&2; exit 4");
                await exec.ConnectAsync(new Uri("ws" + url[4..]), CancellationToken.None);
                Assert.Equal("v4.base64.channel.k8s.io", exec.SubProtocol);
                await exec.SendAsync(Encoding.ASCII.GetBytes("0" + Convert.ToBase64String("abc"u8)), WebSocketMessageType.Text, true, CancellationToken.None);
                var channels = new Dictionary<char, string>();
                while (await ReceiveMessageAsync(exec) is { Length: > 0 } message)
                    channels[(char)message[0]] = channels.GetValueOrDefault((char)message[0], "") + Encoding.UTF8.GetString(Convert.FromBase64String(Encoding.ASCII.GetString(message, 1, message.Length - 1)));
                Assert.Equal("abc", channels.GetValueOrDefault('1', ""));
                Assert.Equal("err\n", channels.GetValueOrDefault('2', ""));
                Assert.Equal("4", Status(channels['3']).GetProperty("details").GetProperty("causes")[0].GetProperty("message").GetString());
            }

            // Port-forward: the port prefix and the data, each in base64 text.
            await WaitForListenerAsync(id, 7002);
            var request = new Cri.V1.PortForwardRequest { PodSandboxId = podId };
            request.Port.Add(7002);
            using var forward = new ClientWebSocket();
            forward.Options.AddSubProtocol("v4.base64.channel.k8s.io");
            await forward.ConnectAsync(new Uri("ws" + (await bed.Daemon.Runtime.PortForwardAsync(request)).Url[4..]), CancellationToken.None);
            Assert.Equal("v4.base64.channel.k8s.io", forward.SubProtocol);
            Assert.Equal("0" + Convert.ToBase64String(new byte[] { 0x5a, 0x1b }), Encoding.ASCII.GetString(await ReceiveMessageAsync(forward)));
            Assert.Equal("1" + Convert.ToBase64String(new byte[] { 0x5a, 0x1b }), Encoding.ASCII.GetString(await ReceiveMessageAsync(forward)));
            await forward.SendAsync(Encoding.ASCII.GetBytes("0" + Convert.ToBase64String("ping"u8)), WebSocketMessageType.Text, true, CancellationToken.None);
            var echoed = new StringBuilder();
            while (echoed.Length < 4)
            {
                var message = await ReceiveMessageAsync(forward);
                Assert.Equal((byte)'0', message[0]);
                echoed.Append(Encoding.ASCII.GetString(Convert.FromBase64String(Encoding.ASCII.GetString(message, 1, message.Length - 1))));
            }
            Assert.Equal("ping", echoed.ToString());
            await forward.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    private async Task WaitForListenerAsync(string id, int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            // busybox nc listens on [::] when the pod has IPv6, which takes IPv4 connections too.
            var (_, stdout, _) = await bed.ExecAsync(id, "cat", "/proc/net/tcp", "/proc/net/tcp6");
            if (stdout.Split('\n').Any(l => l.Contains($":{port:X4} ", StringComparison.Ordinal) && l.Contains(" 0A ", StringComparison.Ordinal))) return;
            await Task.Delay(100);
        }
        throw new TimeoutException($"nothing listens on {port} in container {id}");
    }

    private static async Task<byte[]> ReceiveMessageAsync(ClientWebSocket socket)
    {
        using var message = new MemoryStream();
        var buffer = new byte[64 * 1024];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, timeout.Token);
            if (result.MessageType == WebSocketMessageType.Close) return [];
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage) return message.ToArray();
        }
    }

    private static async Task<Dictionary<byte, string>> ReceiveAllAsync(ClientWebSocket socket)
    {
        var channels = new Dictionary<byte, string>();
        while (true)
        {
            var message = await ReceiveMessageAsync(socket);
            if (message.Length == 0 && socket.State != WebSocketState.Open) return channels;
            if (message.Length == 0) continue;
            channels[message[0]] = channels.GetValueOrDefault(message[0], "") + Encoding.UTF8.GetString(message, 1, message.Length - 1);
        }
    }
}
