using System.Buffers;
using System.Net.Sockets;

namespace Berth.Streaming.PortForward;

/// <summary>
/// Copies between a client stream and a connection to the pod, keeping half-closes: the client's end of data
/// shuts down the socket's sending side, and the pod's end of data closes the client stream's writing side. Done
/// when both directions are, or when either fails.
/// </summary>
internal static class PortRelay
{
    private const int BufferSize = 64 * 1024;

    public static async Task RunAsync(DuplexStream client, Socket pod, Func<ValueTask> closeClientWrite, CancellationToken cancellationToken)
    {
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var toPod = Task.Run(async () =>
        {
            try
            {
                await client.SendToAsync(pod, failed.Token);
                pod.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                await failed.CancelAsync();
            }
        }, CancellationToken.None);
        var toClient = Task.Run(async () =>
        {
            var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            try
            {
                int read;
                while ((read = await pod.ReceiveAsync(buffer.AsMemory(0, BufferSize), SocketFlags.None, failed.Token)) > 0)
                    await client.WriteAsync(buffer.AsMemory(0, read), failed.Token);
                await closeClientWrite();
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                await failed.CancelAsync();
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }, CancellationToken.None);
        await Task.WhenAll(toPod, toClient);
    }
}
