using System.CommandLine;
using System.Net.WebSockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using Berth.Cli.Terminal;
using Berth.Streaming.RemoteCommand;
using Berth.Streaming.WebSockets;
using Berth.Cri.V1;

namespace Berth.Cli.Commands;

/// <summary>
/// <c>berth exec [-i] [-t] &lt;container&gt; -- cmd...</c>: the Exec RPC, then its streaming URL over WebSocket
/// (<c>v5.channel.k8s.io</c>, else <c>v4</c>) with src/Streaming's channel framing. The exit status is the command's.
/// </summary>
internal static class ExecCommand
{
    public static Command Create(GlobalOptions global)
    {
        var container = new Argument<string>("container") { Description = "container ID, ID prefix or name" };
        var cmd = new Argument<string[]>("command") { Description = "the command and its arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "send stdin to the command" };
        var tty = new Option<bool>("--tty", "-t") { Description = "run the command on a terminal" };
        var command = new Command("exec", "run a command in a running container") { container, cmd, interactive, tty };
        global.SetAction(command, async (result, cri, cancellationToken) =>
        {
            var id = (await Resolve.ContainerAsync(cri, result.GetValue(container)!, cancellationToken)).Id;
            var wantTty = result.GetValue(tty) && RawTerminal.IsTerminal(0);
            var wantStdin = result.GetValue(interactive);
            var response = await cri.Runtime.ExecAsync(new ExecRequest
            {
                ContainerId = id,
                Cmd = { result.GetValue(cmd)! },
                Tty = wantTty,
                Stdin = wantStdin,
                Stdout = true,
                Stderr = !wantTty,
            }, deadline: cri.Deadline, cancellationToken: cancellationToken);
            return await RunAsync(new Uri(response.Url), wantStdin, wantTty, cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(Uri url, bool stdin, bool tty, CancellationToken cancellationToken)
    {
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(RemoteCommandProtocol.V5);
        socket.Options.AddSubProtocol(RemoteCommandProtocol.V4);
        var target = new UriBuilder(url) { Scheme = url.Scheme == Uri.UriSchemeHttps ? "wss" : "ws" }.Uri;
        try
        {
            await socket.ConnectAsync(target, cancellationToken);
        }
        catch (WebSocketException e)
        {
            throw new CliException($"can't open the exec stream {url}: {e.Message}");
        }
        var protocol = socket.SubProtocol ?? RemoteCommandProtocol.V4;
        bool[] readable = [false, true, true, true, false];
        await using var channels = new ChannelWebSocket(socket, readable, closeSignals: protocol == RemoteCommandProtocol.V5);
        _ = channels.RunAsync();
        using var raw = tty ? RawTerminal.Enter() : null;
        using var resizes = tty ? SendResizes(channels, cancellationToken) : null;

        var stdout = CopyAsync(channels.Channel(RemoteCommandProtocol.StdoutChannel), Console.OpenStandardOutput(), cancellationToken);
        var stderr = CopyAsync(channels.Channel(RemoteCommandProtocol.StderrChannel), Console.OpenStandardError(), cancellationToken);
        if (stdin) _ = SendStdinAsync(channels, cancellationToken);
        using var error = new MemoryStream();
        await channels.Channel(RemoteCommandProtocol.ErrorChannel).CopyToAsync(error, cancellationToken);
        await Task.WhenAll(stdout, stderr);
        return ExitCode(error.ToArray());
    }

    private static async Task CopyAsync(Stream from, Stream to, CancellationToken cancellationToken)
    {
        var buffer = new byte[32 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer, cancellationToken)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            await to.FlushAsync(cancellationToken);
        }
    }

    private static async Task SendStdinAsync(ChannelWebSocket channels, CancellationToken cancellationToken)
    {
        try
        {
            await CopyAsync(Console.OpenStandardInput(), channels.Channel(RemoteCommandProtocol.StdinChannel), cancellationToken);
            await channels.CloseChannelAsync(RemoteCommandProtocol.StdinChannel, cancellationToken);
        }
        catch (IOException)
        {
            // The stream ended first: the command is done.
        }
    }

    /// <summary>The terminal's size now and on every SIGWINCH, as <c>{"Width":W,"Height":H}</c> on the resize channel.</summary>
    private static PosixSignalRegistration SendResizes(ChannelWebSocket channels, CancellationToken cancellationToken)
    {
        void Send()
        {
            if (RawTerminal.Size() is not var (width, height)) return;
            var json = JsonSerializer.SerializeToUtf8Bytes(new TerminalSizeMessage(width, height), CliJsonContext.Default.TerminalSizeMessage);
            _ = channels.SendAsync(RemoteCommandProtocol.ResizeChannel, json, cancellationToken).AsTask();
        }
        Send();
        return PosixSignalRegistration.Create(PosixSignal.SIGWINCH, _ => Send());
    }

    /// <summary>The exit status from the error channel's metav1.Status; a failure to run is reported and is 1.</summary>
    internal static int ExitCode(byte[] status)
    {
        if (RemoteCommandProtocol.ExitCodeOf(status, out var failure) is { } code) return code;
        Console.Error.WriteLine($"berth: {failure}");
        return 1;
    }
}
