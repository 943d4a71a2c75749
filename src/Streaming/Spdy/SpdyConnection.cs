using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Threading.Channels;

namespace Berth.Streaming.Spdy;

/// <summary>Limits of one SPDY session.</summary>
public sealed record SpdyConnectionOptions
{
    /// <summary>Streams open at once; more are refused with RST_STREAM REFUSED_STREAM.</summary>
    public int MaxConcurrentStreams { get; init; } = 1000;

    /// <summary>Largest frame accepted; the protocol's own bound is 2^24-1.</summary>
    public int MaxFrameLength { get; init; } = SpdyFrameHeader.MaxLength;

    /// <summary>Largest inflated header block.</summary>
    public int MaxHeaderBlock { get; init; } = 64 * 1024;

    /// <summary>The session ends when no frame arrives for this long (kubelet's default is 4 hours).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(4);
}

/// <summary>
/// The server side of a SPDY/3.1 session over an upgraded HTTP/1.1 connection: the peer opens streams (odd IDs),
/// this side accepts, replies and exchanges data on them. One reader task parses frames; writers share a lock, under
/// which header blocks are also compressed, because the compression context must see blocks in wire order.
/// </summary>
/// <remarks>
/// Flow control: this side grants window as its readers consume data (WINDOW_UPDATE per stream and, as 3.1 adds,
/// for the session). It holds its own sends to the peer's windows only once the peer has shown it does flow control
/// (a WINDOW_UPDATE, or SETTINGS with an initial window): the SPDY stack of Kubernetes clients (spdystream) never
/// sends WINDOW_UPDATE, and a sender waiting for one would stall after the first 64 KiB.
/// </remarks>
public sealed class SpdyConnection : IAsyncDisposable
{
    internal const int DefaultWindow = 64 * 1024;

    /// <summary>
    /// The window this side offers per stream and for the session: 64 KiB (the protocol's default) caps a
    /// flow-controlled sender at 64 KiB per round trip, far below loopback speed. It matches the inbound buffer.
    /// </summary>
    internal const int ReceiveWindow = 1024 * 1024;
    private const int MaxDataChunk = 64 * 1024;

    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly SpdyConnectionOptions _options;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ArrayBufferWriter<byte> _headerScratch = new(256);
    private readonly SpdyHeaderCompression _deflater = SpdyHeaderCompression.CreateDeflater();
    private readonly SpdyHeaderCompression _inflater = SpdyHeaderCompression.CreateInflater();
    private readonly ConcurrentDictionary<int, SpdyStream> _streams = new();
    private readonly Channel<SpdyStream> _incoming = Channel.CreateUnbounded<SpdyStream>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly CancellationTokenSource _closed = new();
    private readonly Lock _windowLock = new();
    private TaskCompletionSource _windowOpened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _sessionSendWindow = DefaultWindow;
    private int _initialSendWindow = DefaultWindow;
    private int _sessionUnacknowledged;
    private int _lastRemoteStreamId;
    private volatile bool _peerDoesFlowControl;
    private bool _goneAway;
    private Task? _readLoop;

    public SpdyConnection(Stream transport, SpdyConnectionOptions? options = null)
    {
        _options = options ?? new SpdyConnectionOptions();
        _reader = PipeReader.Create(transport, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
        _writer = PipeWriter.Create(transport, new StreamPipeWriterOptions(leaveOpen: true));
    }

    /// <summary>Cancelled when the session ends: the peer closed, broke the protocol, went idle, or this side closed it.</summary>
    public CancellationToken Closed => _closed.Token;

    /// <summary>Starts reading frames. Completes when the session ends.</summary>
    public Task RunAsync()
    {
        _readLoop ??= Task.Run(async () =>
        {
            await WriteControlAsync(w =>
            {
                SpdyFrameWriter.WriteSettings(w, 0, [(SpdySettingId.InitialWindowSize, ReceiveWindow)]);
                SpdyFrameWriter.WriteWindowUpdate(w, 0, ReceiveWindow - DefaultWindow);
            });
            await ReadLoopAsync();
        });
        return _readLoop;
    }

    /// <summary>The next stream the peer opened, or null once the session has ended.</summary>
    public async ValueTask<SpdyStream?> AcceptStreamAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _incoming.Reader.ReadAsync(cancellationToken);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    private async Task ReadLoopAsync()
    {
        // One timer, pushed back at every read, instead of a token source per read.
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
        try
        {
            while (!_closed.IsCancellationRequested)
            {
                idle.CancelAfter(_options.IdleTimeout);
                var result = await _reader.ReadAsync(idle.Token);
                var buffer = result.Buffer;
                while (TryReadFrame(ref buffer, out var header, out var payload))
                    await HandleFrameAsync(header, payload);
                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (SpdyProtocolException)
        {
            await TryGoAwayAsync(SpdyGoAwayStatus.ProtocolError);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            Shutdown();
        }
    }

    private bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out SpdyFrameHeader header, out ReadOnlySequence<byte> payload)
    {
        header = default;
        payload = default;
        if (buffer.Length < SpdyFrameHeader.Size) return false;
        Span<byte> bytes = stackalloc byte[SpdyFrameHeader.Size];
        buffer.Slice(0, SpdyFrameHeader.Size).CopyTo(bytes);
        header = SpdyFrameHeader.Parse(bytes);
        if (header.Length > _options.MaxFrameLength) throw new SpdyProtocolException($"a frame of {header.Length} bytes exceeds {_options.MaxFrameLength}");
        if (buffer.Length < SpdyFrameHeader.Size + header.Length) return false;
        payload = buffer.Slice(SpdyFrameHeader.Size, header.Length);
        buffer = buffer.Slice(SpdyFrameHeader.Size + header.Length);
        return true;
    }

    private async ValueTask HandleFrameAsync(SpdyFrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (!header.IsControl)
        {
            await HandleDataAsync(header, payload);
            return;
        }
        if (header.Version != SpdyFrameWriter.Version)
        {
            // Only a new stream can be refused on its own; other frames of an unknown version are dropped.
            if (header.Type == SpdyControlType.SynStream && payload.Length >= 4)
                await WriteRstAsync(ReadInt32(payload) & 0x7FFFFFFF, SpdyRstStatus.UnsupportedVersion);
            return;
        }
        var body = payload.IsSingleSegment ? payload.FirstSpan : payload.ToArray();
        switch (header.Type)
        {
            case SpdyControlType.SynStream:
                await HandleSynStreamAsync(header, body.ToArray());
                break;
            case SpdyControlType.SynReply:
            case SpdyControlType.Headers:
                // Nothing to act on for a server, but the block must pass through the inflater to keep it in step.
                if (body.Length < 4) throw new SpdyProtocolException($"{header.Type} is {body.Length} bytes");
                _ = SpdyHeaderBlock.Decode(_inflater.Decompress(body[4..], _options.MaxHeaderBlock));
                break;
            case SpdyControlType.RstStream:
                if (body.Length != 8) throw new SpdyProtocolException($"RST_STREAM is {body.Length} bytes");
                if (_streams.TryGetValue(BinaryPrimitives.ReadInt32BigEndian(body) & 0x7FFFFFFF, out var reset)) reset.OnReset();
                break;
            case SpdyControlType.Settings:
                HandleSettings(body);
                break;
            case SpdyControlType.Ping:
                if (body.Length != 4) throw new SpdyProtocolException($"PING is {body.Length} bytes");
                // Odd IDs are the client's: echo them. Even ones answer pings of ours, and we send none.
                var id = BinaryPrimitives.ReadUInt32BigEndian(body);
                if ((id & 1) == 1) await WriteControlAsync(w => SpdyFrameWriter.WritePing(w, id));
                break;
            case SpdyControlType.GoAway:
                _goneAway = true;
                _incoming.Writer.TryComplete();
                break;
            case SpdyControlType.WindowUpdate:
                if (body.Length != 8) throw new SpdyProtocolException($"WINDOW_UPDATE is {body.Length} bytes");
                HandleWindowUpdate(BinaryPrimitives.ReadInt32BigEndian(body) & 0x7FFFFFFF, BinaryPrimitives.ReadInt32BigEndian(body[4..]) & 0x7FFFFFFF);
                break;
            default:
                break; // Unknown control frames are ignored (section 2.2.1).
        }
    }

    private async ValueTask HandleSynStreamAsync(SpdyFrameHeader header, byte[] body)
    {
        if (body.Length < 10) throw new SpdyProtocolException($"SYN_STREAM is {body.Length} bytes");
        var streamId = BinaryPrimitives.ReadInt32BigEndian(body) & 0x7FFFFFFF;
        var headers = SpdyHeaderBlock.Decode(_inflater.Decompress(body.AsSpan(10), _options.MaxHeaderBlock));
        if (streamId == 0 || (streamId & 1) == 0 || streamId <= _lastRemoteStreamId)
            throw new SpdyProtocolException($"SYN_STREAM with stream ID {streamId} after {_lastRemoteStreamId}");
        _lastRemoteStreamId = streamId;
        if (_goneAway || _streams.Count >= _options.MaxConcurrentStreams)
        {
            await WriteRstAsync(streamId, SpdyRstStatus.RefusedStream);
            return;
        }
        var stream = new SpdyStream(this, streamId, headers, _initialSendWindow);
        _streams[streamId] = stream;
        if ((header.Flags & SpdyFlags.Fin) != 0) stream.OnRemoteFin();
        if (!_incoming.Writer.TryWrite(stream)) await WriteRstAsync(streamId, SpdyRstStatus.RefusedStream);
    }

    private async ValueTask HandleDataAsync(SpdyFrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (!_streams.TryGetValue(header.StreamId, out var stream))
        {
            if (header.StreamId > _lastRemoteStreamId) await WriteRstAsync(header.StreamId, SpdyRstStatus.InvalidStream);
            CreditSession((int)payload.Length); // the data still counted against the session window
            return;
        }
        await stream.OnDataAsync(payload, (header.Flags & SpdyFlags.Fin) != 0);
    }

    private void HandleSettings(ReadOnlySpan<byte> body)
    {
        if (body.Length < 4) throw new SpdyProtocolException($"SETTINGS is {body.Length} bytes");
        var count = BinaryPrimitives.ReadInt32BigEndian(body);
        if (count < 0 || body.Length != 4 + 8 * count) throw new SpdyProtocolException($"SETTINGS of {body.Length} bytes claims {count} entries");
        for (var i = 0; i < count; i++)
        {
            var entry = body.Slice(4 + 8 * i, 8);
            var id = (int)(BinaryPrimitives.ReadUInt32BigEndian(entry) & 0x00FFFFFF);
            var value = BinaryPrimitives.ReadInt32BigEndian(entry[4..]);
            if (id != SpdySettingId.InitialWindowSize || value <= 0) continue;
            lock (_windowLock)
            {
                var delta = value - _initialSendWindow;
                _initialSendWindow = value;
                foreach (var stream in _streams.Values) stream.AddSendWindow(delta);
                _peerDoesFlowControl = true;
                SignalWindow();
            }
        }
    }

    private void HandleWindowUpdate(int streamId, int delta)
    {
        lock (_windowLock)
        {
            if (streamId == 0) _sessionSendWindow += delta;
            else if (_streams.TryGetValue(streamId, out var stream)) stream.AddSendWindow(delta);
            _peerDoesFlowControl = true;
            SignalWindow();
        }
    }

    private void SignalWindow()
    {
        var opened = _windowOpened;
        _windowOpened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        opened.TrySetResult();
    }

    /// <summary>Sends data on a stream in chunks, within the peer's windows when it keeps them.</summary>
    internal async ValueTask WriteDataAsync(SpdyStream stream, ReadOnlyMemory<byte> data, bool fin, CancellationToken cancellationToken)
    {
        do
        {
            var chunk = Math.Min(data.Length, MaxDataChunk);
            while (_peerDoesFlowControl && chunk > 0)
            {
                Task opened;
                lock (_windowLock)
                {
                    var allowed = (int)Math.Min(Math.Min(stream.SendWindow, _sessionSendWindow), chunk);
                    if (allowed > 0)
                    {
                        chunk = allowed;
                        stream.AddSendWindow(-allowed);
                        _sessionSendWindow -= allowed;
                        break;
                    }
                    opened = _windowOpened.Task;
                }
                using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token))
                    await opened.WaitAsync(wait.Token);
                stream.ThrowIfWriteClosed();
            }
            var last = fin && chunk == data.Length;
            var piece = data[..chunk];
            await WriteAsync(w =>
            {
                // Asked for whole, so the frame lands in one buffer and leaves in one write to the transport.
                w.GetSpan(SpdyFrameHeader.Size + piece.Length);
                SpdyFrameWriter.WriteDataHeader(w, stream.Id, last ? SpdyFlags.Fin : (byte)0, piece.Length);
                w.Write(piece.Span);
            }, cancellationToken);
            data = data[chunk..];
        }
        while (data.Length > 0);
    }

    internal ValueTask WriteReplyAsync(int streamId, IReadOnlyCollection<KeyValuePair<string, string>> headers, bool fin, CancellationToken cancellationToken) =>
        WriteAsync(w =>
        {
            _headerScratch.ResetWrittenCount();
            var plain = new ArrayBufferWriter<byte>(64);
            SpdyHeaderBlock.Encode(headers, plain);
            _deflater.Compress(plain.WrittenSpan, _headerScratch);
            SpdyFrameWriter.WriteSynReply(w, streamId, fin ? SpdyFlags.Fin : (byte)0, _headerScratch.WrittenSpan);
        }, cancellationToken);

    internal Task WriteRstAsync(int streamId, SpdyRstStatus status) =>
        WriteControlAsync(w => SpdyFrameWriter.WriteRstStream(w, streamId, status));

    /// <summary>Grants the peer window for data a reader consumed; sent in batches of a quarter window.</summary>
    internal void Credit(SpdyStream stream, int consumed)
    {
        var streamDelta = stream.TakeCredit(consumed);
        if (streamDelta > 0) _ = WriteControlAsync(w => SpdyFrameWriter.WriteWindowUpdate(w, stream.Id, streamDelta));
        CreditSession(consumed);
    }

    private void CreditSession(int consumed)
    {
        var total = Interlocked.Add(ref _sessionUnacknowledged, consumed);
        if (total < ReceiveWindow / 4) return;
        var delta = Interlocked.Exchange(ref _sessionUnacknowledged, 0);
        if (delta > 0) _ = WriteControlAsync(w => SpdyFrameWriter.WriteWindowUpdate(w, 0, delta));
    }

    internal void Forget(SpdyStream stream) => _streams.TryRemove(stream.Id, out _);

    private async Task WriteControlAsync(Action<IBufferWriter<byte>> frame)
    {
        try
        {
            await WriteAsync(frame, CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private async ValueTask WriteAsync(Action<IBufferWriter<byte>> frame, CancellationToken cancellationToken)
    {
        if (_closed.IsCancellationRequested) throw new IOException("the SPDY session is closed");
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            if (_closed.IsCancellationRequested) throw new IOException("the SPDY session is closed");
            frame(_writer);
            var flushed = await _writer.FlushAsync(CancellationToken.None);
            if (flushed.IsCanceled || flushed.IsCompleted) throw new IOException("the SPDY session is closed");
        }
        catch (Exception e) when (e is not IOException and not OperationCanceledException)
        {
            throw new IOException("the SPDY session is closed", e);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask TryGoAwayAsync(SpdyGoAwayStatus status)
    {
        if (_closed.IsCancellationRequested) return;
        await WriteControlAsync(w => SpdyFrameWriter.WriteGoAway(w, _lastRemoteStreamId, status));
    }

    private void Shutdown()
    {
        _incoming.Writer.TryComplete();
        foreach (var stream in _streams.Values) stream.OnReset();
        lock (_windowLock) SignalWindow();
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Says GOAWAY, stops reading and ends every stream. The transport is the caller's to close.</summary>
    public async ValueTask DisposeAsync()
    {
        await TryGoAwayAsync(SpdyGoAwayStatus.Ok);
        Shutdown();
        if (_readLoop is not null)
        {
            try
            {
                await _readLoop.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (TimeoutException)
            {
            }
        }
        await _reader.CompleteAsync();
        await _writeLock.WaitAsync();
        try
        {
            await _writer.CompleteAsync();
            _deflater.Dispose();
            _inflater.Dispose();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private static int ReadInt32(ReadOnlySequence<byte> payload)
    {
        Span<byte> bytes = stackalloc byte[4];
        payload.Slice(0, 4).CopyTo(bytes);
        return BinaryPrimitives.ReadInt32BigEndian(bytes);
    }
}
