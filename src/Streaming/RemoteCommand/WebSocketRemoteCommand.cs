using System.Threading.Channels;
using Berth.Streaming.WebSockets;

namespace Berth.Streaming.RemoteCommand;

/// <summary>
/// Exec and attach over a channel WebSocket: channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize. The server
/// first sends an empty message on the lowest channel it writes, which tells the client the streams are ready.
/// </summary>
internal static class WebSocketRemoteCommand
{
    public static async Task ServeAsync(ChannelWebSocket socket, string protocol, IRemoteCommand command, CancellationToken cancellationToken)
    {
        var options = command.Options;
        using var clientGone = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, socket.Closed);
        var ready = options.Stdout ? RemoteCommandProtocol.StdoutChannel : options.Stderr ? RemoteCommandProtocol.StderrChannel : RemoteCommandProtocol.ErrorChannel;
        await socket.SendAsync(ready, ReadOnlyMemory<byte>.Empty, cancellationToken);

        Channel<TerminalSize>? sizes = null;
        Task? resizeLoop = null;
        if (options.Tty)
        {
            sizes = Channel.CreateBounded<TerminalSize>(new BoundedChannelOptions(8) { FullMode = BoundedChannelFullMode.DropOldest });
            resizeLoop = RemoteCommandProtocol.ReadResizesAsync(socket.Channel(RemoteCommandProtocol.ResizeChannel), sizes.Writer, clientGone.Token);
        }

        int? exitCode = null;
        string? failure = null;
        try
        {
            exitCode = await command.RunAsync(new RemoteCommandStreams
            {
                Stdin = options.Stdin ? socket.Channel(RemoteCommandProtocol.StdinChannel) : null,
                Stdout = options.Stdout ? socket.Channel(RemoteCommandProtocol.StdoutChannel) : null,
                Stderr = options.Stderr ? socket.Channel(RemoteCommandProtocol.StderrChannel) : null,
                Resize = sizes?.Reader,
            }, clientGone.Token);
        }
        catch (OperationCanceledException) when (clientGone.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            failure = e.Message;
        }

        try
        {
            var outcome = RemoteCommandProtocol.Outcome(protocol, exitCode, failure);
            if (outcome.Length > 0) await socket.SendAsync(RemoteCommandProtocol.ErrorChannel, outcome, cancellationToken);
        }
        catch (IOException)
        {
        }
        clientGone.Cancel();
        if (resizeLoop is not null) await resizeLoop;
    }
}
