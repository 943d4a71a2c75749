using System.Threading.Channels;
using Berth.Streaming.Spdy;

namespace Berth.Streaming.RemoteCommand;

/// <summary>
/// Exec and attach over SPDY: the client opens one stream per standard stream plus an error stream (and a resize
/// stream for a TTY from v3 on), each named by its <c>streamType</c> header. Once all expected streams are open the
/// command runs; its outcome goes to the error stream, and the session ends.
/// </summary>
internal static class SpdyRemoteCommand
{
    public static async Task ServeAsync(SpdyConnection connection, string protocol, IRemoteCommand command, TimeSpan streamCreationTimeout, CancellationToken cancellationToken)
    {
        var options = command.Options;
        var expected = 1 + (options.Stdin ? 1 : 0) + (options.Stdout ? 1 : 0) + (options.Stderr ? 1 : 0)
                       + (options.Tty && RemoteCommandProtocol.HasResizeStream(protocol) ? 1 : 0);
        SpdyStream? error = null, stdin = null, stdout = null, stderr = null, resize = null;
        using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, connection.Closed))
        {
            wait.CancelAfter(streamCreationTimeout);
            try
            {
                for (var received = 0; received < expected;)
                {
                    var stream = await connection.AcceptStreamAsync(wait.Token);
                    if (stream is null) return;
                    await stream.ReplyAsync(cancellationToken: wait.Token);
                    switch (stream.Header(RemoteCommandProtocol.StreamTypeHeader))
                    {
                        case RemoteCommandProtocol.StreamError: error = stream; break;
                        case RemoteCommandProtocol.StreamStdin: stdin = stream; break;
                        case RemoteCommandProtocol.StreamStdout: stdout = stream; break;
                        case RemoteCommandProtocol.StreamStderr: stderr = stream; break;
                        case RemoteCommandProtocol.StreamResize: resize = stream; break;
                        default:
                            await stream.ResetAsync(wait.Token);
                            continue;
                    }
                    received++;
                }
            }
            catch (OperationCanceledException)
            {
                return; // the client did not open its streams in time, or went away
            }
        }

        Channel<TerminalSize>? sizes = null;
        using var clientGone = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, connection.Closed);
        Task? resizeLoop = null;
        if (resize is not null)
        {
            sizes = Channel.CreateBounded<TerminalSize>(new BoundedChannelOptions(8) { FullMode = BoundedChannelFullMode.DropOldest });
            resizeLoop = RemoteCommandProtocol.ReadResizesAsync(resize, sizes.Writer, clientGone.Token);
        }

        int? exitCode = null;
        string? failure = null;
        try
        {
            exitCode = await command.RunAsync(new RemoteCommandStreams
            {
                Stdin = stdin,
                Stdout = stdout,
                Stderr = stderr,
                Resize = sizes?.Reader,
            }, clientGone.Token);
        }
        catch (OperationCanceledException) when (clientGone.IsCancellationRequested)
        {
            return; // nobody is left to tell
        }
        catch (Exception e)
        {
            failure = e.Message;
        }

        try
        {
            if (stdout is not null) await stdout.CloseWriteAsync(cancellationToken);
            if (stderr is not null) await stderr.CloseWriteAsync(cancellationToken);
            if (error is not null)
            {
                var outcome = RemoteCommandProtocol.Outcome(protocol, exitCode, failure);
                if (outcome.Length > 0) await error.WriteAsync(outcome, cancellationToken);
                await error.CloseWriteAsync(cancellationToken);
            }
        }
        catch (IOException)
        {
        }
        clientGone.Cancel();
        if (resizeLoop is not null) await resizeLoop;
    }
}
