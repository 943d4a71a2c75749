using System.Buffers;
using System.Net.Sockets;
using Berth.ShimProtocol;

namespace Berth.Runtime.Containers;

/// <summary>
/// A client attached to a container's stdio through its shim's attach socket: output frames go to the client's
/// stdout or stderr, its stdin goes to the container, and resizes to the shim's terminal. Ends when the container's
/// output ends or the client goes away; the container is left alone either way.
/// </summary>
internal static class ShimAttach
{
    public static async Task RelayAsync(ContainerRecord record, InteractiveStreams io, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(Path.Combine(record.Bundle, ShimFiles.AttachSocket)), cancellationToken);
        }
        catch (SocketException e)
        {
            throw new ContainerStateException($"the container's shim is not serving attach ({e.SocketErrorCode}); is the container running?");
        }
        using var copying = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var input = io.Stdin is null || !record.Stdin ? Task.CompletedTask : Task.Run(() => SendInputAsync(socket, io.Stdin, copying.Token), CancellationToken.None);
        var resizes = io.Resize is null || !record.Tty ? Task.CompletedTask : Task.Run(async () =>
        {
            try
            {
                await foreach (var (columns, rows) in io.Resize.WithCancellation(copying.Token))
                    await ShimClient.RequestAsync(record.Bundle, ShimControlRequest.Resize(columns, rows), copying.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ContainerException or SocketException or IOException)
            {
            }
        }, CancellationToken.None);

        try
        {
            await using var frames = new NetworkStream(socket, ownsSocket: false);
            await ReceiveOutputAsync(frames, io, cancellationToken);
        }
        catch (IOException)
        {
        }
        finally
        {
            await copying.CancelAsync();
            await Task.WhenAll(input, resizes);
        }
    }

    private static async Task SendInputAsync(Socket socket, Stream stdin, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(32 * 1024);
        try
        {
            int read;
            while ((read = await stdin.ReadAsync(buffer.AsMemory(0, 32 * 1024), cancellationToken)) > 0)
                await socket.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, cancellationToken);
            socket.Shutdown(SocketShutdown.Send); // the shim closes the container's stdin here if stdin_once
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task ReceiveOutputAsync(Stream frames, InteractiveStreams io, CancellationToken cancellationToken)
    {
        var header = new byte[AttachFrame.HeaderLength];
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (await ReadExactlyOrEndAsync(frames, header, cancellationToken))
            {
                var (stream, remaining) = AttachFrame.ReadHeader(header);
                var target = stream == AttachFrame.Stderr ? io.Stderr : io.Stdout;
                while (remaining > 0)
                {
                    var read = await frames.ReadAsync(buffer.AsMemory(0, Math.Min(remaining, buffer.Length)), cancellationToken);
                    if (read == 0) return;
                    if (target is not null) await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    remaining -= read;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task<bool> ReadExactlyOrEndAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            if (read == 0) return false;
            filled += read;
        }
        return true;
    }
}
