using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Berth.Streaming.Spdy;

namespace Berth.Streaming.PortForward;

/// <summary>
/// Port-forward over SPDY (<c>portforward.k8s.io</c>): for each forwarded connection the client opens an error stream
/// and a data stream carrying the same <c>requestID</c> and <c>port</c> headers. Once both are there, the data stream
/// is joined to a new connection to the port inside the pod; failures are written to the error stream.
/// </summary>
internal static class SpdyPortForward
{
    public const string Protocol = "portforward.k8s.io";
    private const string PortHeader = "port";
    private const string RequestIdHeader = "requestID";
    private const string StreamData = "data";
    private const string StreamError = "error";

    private sealed class Pair
    {
        public SpdyStream? Data;
        public SpdyStream? Error;
        public readonly TaskCompletionSource Complete = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public static async Task ServeAsync(SpdyConnection connection, IPortForward target, TimeSpan streamCreationTimeout, CancellationToken cancellationToken)
    {
        var pairs = new ConcurrentDictionary<string, Pair>();
        var forwards = new List<Task>();
        using var session = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, connection.Closed);
        while (true)
        {
            SpdyStream? stream;
            try
            {
                stream = await connection.AcceptStreamAsync(session.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            if (stream is null) break;
            var portText = stream.Header(PortHeader);
            var type = stream.Header(RemoteCommand.RemoteCommandProtocol.StreamTypeHeader);
            if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535
                || type is not (StreamData or StreamError))
            {
                await stream.ReplyAsync(fin: true, session.Token); // refused, as Kubernetes does
                continue;
            }
            await stream.ReplyAsync(cancellationToken: session.Token);
            // Clients older than request IDs send the error stream, then the data stream two IDs later.
            var requestId = stream.Header(RequestIdHeader)
                            ?? (type == StreamError ? stream.Id : stream.Id - 2).ToString(CultureInfo.InvariantCulture);
            var pair = pairs.GetOrAdd(requestId, _ => new Pair());
            var duplicate = false;
            lock (pair)
            {
                if (type == StreamData) duplicate = pair.Data is not null;
                else duplicate = pair.Error is not null;
                if (!duplicate)
                {
                    if (type == StreamData) pair.Data = stream;
                    else pair.Error = stream;
                }
            }
            if (duplicate)
            {
                await stream.ResetAsync(session.Token);
                continue;
            }
            if (pair.Data is { } data && pair.Error is { } error)
            {
                pairs.TryRemove(requestId, out _);
                pair.Complete.TrySetResult();
                forwards.Add(ForwardAsync(target, port, data, error, session.Token));
                forwards.RemoveAll(t => t.IsCompleted);
            }
            else
            {
                _ = ExpireAsync(pairs, requestId, pair, streamCreationTimeout);
            }
        }
        await session.CancelAsync();
        await Task.WhenAll(forwards);
    }

    private static async Task ExpireAsync(ConcurrentDictionary<string, Pair> pairs, string requestId, Pair pair, TimeSpan timeout)
    {
        if (await Task.WhenAny(pair.Complete.Task, Task.Delay(timeout)) == pair.Complete.Task) return;
        if (!pairs.TryRemove(new KeyValuePair<string, Pair>(requestId, pair))) return;
        try
        {
            if (pair.Error is { } error)
            {
                await error.WriteAsync(Encoding.UTF8.GetBytes($"timed out waiting for the data stream of request {requestId}"));
                await error.CloseWriteAsync();
            }
            if (pair.Data is { } data) await data.ResetAsync();
        }
        catch (IOException)
        {
        }
    }

    private static async Task ForwardAsync(IPortForward target, int port, SpdyStream data, SpdyStream error, CancellationToken cancellationToken)
    {
        try
        {
            using var socket = await target.ConnectAsync(port, cancellationToken);
            await PortRelay.RunAsync(data, socket, () => data.CloseWriteAsync(cancellationToken), cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            // Any failure short of the session ending is the client's to see, a timed-out connect included.
            try
            {
                await error.WriteAsync(Encoding.UTF8.GetBytes($"error forwarding port {port} to {target.Description}: {e.Message}"), cancellationToken);
            }
            catch (IOException)
            {
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            await error.CloseWriteAsync(CancellationToken.None);
            await data.CloseWriteAsync(CancellationToken.None);
        }
    }
}
