using System.Text;
using Berth.Streaming.WebSockets;

namespace Berth.Streaming.PortForward;

/// <summary>
/// Port-forward over a channel WebSocket (<c>v4.channel.k8s.io</c>): per requested port a data channel (2i) and an
/// error channel (2i+1), each opened by the server with the port as an unsigned 16-bit little-endian number. One
/// connection per port for the socket's lifetime.
/// </summary>
internal static class WebSocketPortForward
{
    public static async Task ServeAsync(ChannelWebSocket socket, IPortForward target, CancellationToken cancellationToken)
    {
        using var session = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, socket.Closed);
        var ports = target.Ports;
        for (var i = 0; i < ports.Count; i++)
        {
            var prefix = new[] { (byte)(ports[i] & 0xFF), (byte)(ports[i] >> 8) };
            await socket.SendAsync((byte)(2 * i), prefix, cancellationToken);
            await socket.SendAsync((byte)(2 * i + 1), prefix, cancellationToken);
        }
        var forwards = new Task[ports.Count];
        for (var i = 0; i < ports.Count; i++)
        {
            var index = i;
            forwards[i] = Task.Run(async () =>
            {
                var data = socket.Channel((byte)(2 * index));
                try
                {
                    using var pod = await target.ConnectAsync(ports[index], session.Token);
                    await PortRelay.RunAsync(data, pod, () => socket.CloseChannelAsync((byte)(2 * index), session.Token), session.Token);
                }
                catch (Exception e) when (!session.IsCancellationRequested)
                {
                    try
                    {
                        await socket.SendAsync((byte)(2 * index + 1), Encoding.UTF8.GetBytes($"error forwarding port {ports[index]} to {target.Description}: {e.Message}"), session.Token);
                    }
                    catch (Exception send) when (send is IOException or OperationCanceledException)
                    {
                    }
                }
                catch (OperationCanceledException)
                {
                }
            }, CancellationToken.None);
        }
        await Task.WhenAll(forwards);
    }
}
