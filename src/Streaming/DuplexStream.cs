using System.Buffers;
using System.Net.Sockets;

namespace Berth.Streaming;

/// <summary>
/// A non-seekable stream that reads and writes through two async methods; the array and synchronous overloads
/// of <see cref="Stream"/> all lead to them. Flushing is a no-op: each write is sent when it is made.
/// </summary>
public abstract class DuplexStream : Stream
{
    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

    public abstract override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default);

    public sealed override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public sealed override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public sealed override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public sealed override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>
    /// Sends everything read from this stream to <paramref name="socket"/> until the end of the stream. A stream
    /// that holds what it received in buffers of its own sends from them, without a copy through a buffer here.
    /// </summary>
    internal virtual async Task SendToAsync(Socket socket, CancellationToken cancellationToken)
    {
        const int bufferSize = 64 * 1024;
        var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        try
        {
            int read;
            while ((read = await ReadAsync(buffer.AsMemory(0, bufferSize), cancellationToken)) > 0)
                await socket.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public sealed override bool CanRead => true;
    public sealed override bool CanWrite => true;
    public sealed override bool CanSeek => false;
    public sealed override long Length => throw new NotSupportedException();
    public sealed override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public sealed override void SetLength(long value) => throw new NotSupportedException();
}
