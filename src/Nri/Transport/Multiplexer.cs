using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Pipelines;

namespace Berth.Nri.Transport;

/// <summary>
/// NRI's connection multiplexer (containerd/nri pkg/net/multiplex): several logical byte streams over one socket, each
/// chunk framed by an 8-byte header, the connection ID then the chunk length, both big-endian. The runtime calls the
/// plugin on connection 1 and the plugin calls the runtime on connection 2, each carrying plain ttrpc.
/// </summary>
public sealed class Multiplexer : IAsyncDisposable
{
    /// <summary>The plugin's ttrpc server: the runtime is its client.</summary>
    public const uint PluginServiceConnection = 1;

    /// <summary>The runtime's ttrpc server: the plugin is its client.</summary>
    public const uint RuntimeServiceConnection = 2;

    public const int HeaderLength = 8;

    /// <summary>A chunk's largest payload: one whole ttrpc frame of the largest size.</summary>
    public const int MaxChunkLength = TtrpcFrame.HeaderLength + TtrpcFrame.MaxDataLength;

    private readonly Stream _trunk;
    private readonly ConcurrentDictionary<uint, Pipe> _connections = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private Task? _reader;

    public Multiplexer(Stream trunk) => _trunk = trunk;

    /// <summary>Completes when the trunk is closed or broken; its exception says why.</summary>
    public Task Completion => _reader ?? Task.CompletedTask;

    /// <summary>
    /// A logical connection. Chunks for a connection nobody opened are dropped, as the reference does, so open every
    /// connection before <see cref="Start"/>.
    /// </summary>
    public Stream Open(uint id)
    {
        if (id == 0) throw new ArgumentOutOfRangeException(nameof(id), "connection 0 is reserved");
        // No synchronization context: a library's continuations must not queue behind its caller's (a UI or test runner's).
        var pipe = _connections.GetOrAdd(id, _ => new Pipe(new PipeOptions(useSynchronizationContext: false)));
        return new MuxStream(this, id, pipe.Reader.AsStream());
    }

    /// <summary>Starts reading the trunk.</summary>
    public void Start() => _reader ??= Task.Run(ReadLoopAsync);

    private async Task ReadLoopAsync()
    {
        var header = new byte[HeaderLength];
        Exception? error = null;
        try
        {
            while (true)
            {
                if (!await ReadExactlyOrEndAsync(header)) break;
                var id = BinaryPrimitives.ReadUInt32BigEndian(header);
                var length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4));
                if (length > MaxChunkLength) throw new InvalidDataException($"multiplexed chunk of {length} bytes for connection {id}, over the {MaxChunkLength} allowed");
                if (_connections.TryGetValue(id, out var pipe))
                {
                    var memory = pipe.Writer.GetMemory((int)length);
                    await _trunk.ReadExactlyAsync(memory[..(int)length], _closed.Token);
                    pipe.Writer.Advance((int)length);
                    await pipe.Writer.FlushAsync(_closed.Token);
                }
                else
                {
                    var discard = new byte[length];
                    await _trunk.ReadExactlyAsync(discard, _closed.Token);
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or EndOfStreamException or ObjectDisposedException or OperationCanceledException)
        {
            error = e is OperationCanceledException or ObjectDisposedException ? null : e;
        }
        foreach (var pipe in _connections.Values) await pipe.Writer.CompleteAsync(error);
        if (error is not null) throw error;
    }

    private async Task<bool> ReadExactlyOrEndAsync(byte[] buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await _trunk.ReadAsync(buffer.AsMemory(read), _closed.Token);
            if (n == 0)
            {
                if (read == 0) return false;
                throw new EndOfStreamException("the multiplexed connection ended inside a chunk header");
            }
            read += n;
        }
        return true;
    }

    internal async ValueTask WriteAsync(uint id, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var header = new byte[HeaderLength];
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            do
            {
                var chunk = data[..Math.Min(data.Length, MaxChunkLength)];
                BinaryPrimitives.WriteUInt32BigEndian(header, id);
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), (uint)chunk.Length);
                await _trunk.WriteAsync(header, cancellationToken);
                await _trunk.WriteAsync(chunk, cancellationToken);
                data = data[chunk.Length..];
            }
            while (!data.IsEmpty);
            await _trunk.FlushAsync(cancellationToken);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            throw new TtrpcException(RpcCode.Unavailable, $"the multiplexed connection is closed: {e.Message}", e);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_closed.IsCancellationRequested) return;
        await _closed.CancelAsync();
        await _trunk.DisposeAsync();
        if (_reader is not null)
        {
            try
            {
                await _reader;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or EndOfStreamException)
            {
                // Already reported through Completion.
            }
        }
        else
        {
            foreach (var pipe in _connections.Values) await pipe.Writer.CompleteAsync();
        }
    }

    /// <summary>One logical connection: reads what the trunk brought for it, writes as chunks of its ID.</summary>
    private sealed class MuxStream(Multiplexer mux, uint id, Stream reader) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => reader.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            reader.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => mux.WriteAsync(id, buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            mux.WriteAsync(id, buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous only");
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous only");
        public override void Flush() { }
        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
