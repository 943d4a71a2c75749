using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Berth.Streaming.Spdy;

/// <summary>
/// One stream of a <see cref="SpdyConnection"/>, as a duplex <see cref="Stream"/>: reads return the peer's data until
/// its FIN, writes become DATA frames, <see cref="CloseWriteAsync"/> sends this side's FIN and
/// <see cref="ResetAsync"/> a RST_STREAM.
/// </summary>
public sealed class SpdyStream : DuplexStream
{
    // The peer may ignore our window (spdystream does), so the buffer bound is what holds a slow reader's backlog; a
    // full buffer stops the session's reader. It sits above the window we offer, so a peer that keeps to the window
    // never reaches it: otherwise one slow stream could stall the WINDOW_UPDATEs its own progress depends on.
    private static readonly PipeOptions InboundOptions = new(
        pauseWriterThreshold: 2 * SpdyConnection.ReceiveWindow, resumeWriterThreshold: SpdyConnection.ReceiveWindow, useSynchronizationContext: false);

    private readonly SpdyConnection _connection;
    private readonly Pipe _inbound = new(InboundOptions);
    private int _sendWindow;
    private int _unacknowledged;
    private int _remoteClosed;
    private int _localClosed;
    private volatile bool _reset;

    internal SpdyStream(SpdyConnection connection, int id, IReadOnlyDictionary<string, string> headers, int sendWindow)
    {
        _connection = connection;
        Id = id;
        Headers = headers;
        _sendWindow = sendWindow;
    }

    public int Id { get; }

    /// <summary>The SYN_STREAM's headers, names case-insensitive.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; }

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

    internal int SendWindow => Volatile.Read(ref _sendWindow);

    internal void AddSendWindow(int delta) => Interlocked.Add(ref _sendWindow, delta);

    /// <summary>Accepts the stream (SYN_REPLY). With <paramref name="fin"/> it is also closed from this side at once.</summary>
    public async ValueTask ReplyAsync(bool fin = false, CancellationToken cancellationToken = default)
    {
        await _connection.WriteReplyAsync(Id, [], fin, cancellationToken);
        if (fin) MarkLocalClosed();
    }

    /// <summary>Half-closes: sends FIN; the peer's data may still arrive.</summary>
    public async ValueTask CloseWriteAsync(CancellationToken cancellationToken = default)
    {
        if (_reset || Interlocked.Exchange(ref _localClosed, 1) == 1) return;
        try
        {
            await _connection.WriteDataAsync(this, ReadOnlyMemory<byte>.Empty, fin: true, cancellationToken);
        }
        catch (IOException)
        {
        }
        ForgetIfDone();
    }

    /// <summary>Aborts both directions with RST_STREAM.</summary>
    public async ValueTask ResetAsync(CancellationToken cancellationToken = default)
    {
        if (_reset) return;
        OnReset();
        await _connection.WriteRstAsync(Id, SpdyRstStatus.Cancel).WaitAsync(cancellationToken);
    }

    internal async ValueTask OnDataAsync(ReadOnlySequence<byte> payload, bool fin)
    {
        if (Volatile.Read(ref _remoteClosed) == 1 || _reset)
        {
            // Data after FIN is a stream error (section 2.2.2); either way it is dropped.
            _connection.Credit(this, (int)payload.Length);
            return;
        }
        foreach (var segment in payload)
        {
            // Sized by the segment, so a frame stays in one buffer rather than in the pipe's 4 KiB default.
            var span = _inbound.Writer.GetSpan(segment.Length);
            segment.Span.CopyTo(span);
            _inbound.Writer.Advance(segment.Length);
        }
        if (payload.Length > 0)
        {
            var flushed = await _inbound.Writer.FlushAsync(_connection.Closed);
            _ = flushed;
        }
        if (fin) OnRemoteFin();
    }

    internal void OnRemoteFin()
    {
        if (Interlocked.Exchange(ref _remoteClosed, 1) == 1) return;
        _inbound.Writer.Complete();
        ForgetIfDone();
    }

    internal void OnReset()
    {
        _reset = true;
        Interlocked.Exchange(ref _remoteClosed, 1);
        Interlocked.Exchange(ref _localClosed, 1);
        _inbound.Writer.Complete();
        _connection.Forget(this);
    }

    internal void ThrowIfWriteClosed()
    {
        if (_reset) throw new IOException($"SPDY stream {Id} was reset");
    }

    internal int TakeCredit(int consumed)
    {
        var total = Interlocked.Add(ref _unacknowledged, consumed);
        return total >= SpdyConnection.ReceiveWindow / 4 ? Interlocked.Exchange(ref _unacknowledged, 0) : 0;
    }

    private void MarkLocalClosed()
    {
        Interlocked.Exchange(ref _localClosed, 1);
        ForgetIfDone();
    }

    private void ForgetIfDone()
    {
        if (Volatile.Read(ref _localClosed) == 1 && Volatile.Read(ref _remoteClosed) == 1) _connection.Forget(this);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0) return 0;
        if (await ReadInboundAsync(cancellationToken) is not { } result) return 0;
        var available = result.Buffer;
        if (available.IsEmpty && result.IsCompleted)
        {
            _inbound.Reader.AdvanceTo(available.End);
            return 0;
        }
        var count = (int)Math.Min(available.Length, buffer.Length);
        available.Slice(0, count).CopyTo(buffer.Span);
        _inbound.Reader.AdvanceTo(available.GetPosition(count));
        _connection.Credit(this, count);
        return count;
    }

    /// <summary>Port-forward's way out of the stream: sends the peer's data from the inbound buffers, not through a copy.</summary>
    internal override async Task SendToAsync(Socket socket, CancellationToken cancellationToken)
    {
        while (await ReadInboundAsync(cancellationToken) is { } result)
        {
            var available = result.Buffer;
            var length = (int)available.Length; // read before AdvanceTo hands the segments back
            // Each buffer holds whole frames (see OnDataAsync), so a send carries a frame or more.
            foreach (var segment in available)
                await socket.SendAsync(segment, SocketFlags.None, cancellationToken);
            _inbound.Reader.AdvanceTo(available.End);
            if (length > 0) _connection.Credit(this, length);
            if (result.IsCompleted) return;
        }
    }

    /// <summary>The next read of the inbound pipe, or null once an earlier read saw its end (the reader is completed then).</summary>
    private async ValueTask<ReadResult?> ReadInboundAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _inbound.Reader.ReadAsync(cancellationToken);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfWriteClosed();
        if (Volatile.Read(ref _localClosed) == 1) throw new IOException($"SPDY stream {Id} is closed for writing");
        if (buffer.Length == 0) return;
        await _connection.WriteDataAsync(this, buffer, fin: false, cancellationToken);
    }
}
