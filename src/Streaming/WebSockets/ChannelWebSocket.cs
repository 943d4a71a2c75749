using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;

namespace Berth.Streaming.WebSockets;

/// <summary>
/// Kubernetes' channel framing over a WebSocket (<c>channel.k8s.io</c> and its <c>v4.</c>/<c>v5.</c> versions):
/// every binary message starts with the channel number. In <c>v5.channel.k8s.io</c> a message of
/// <c>[255, channel]</c> closes that channel from the sender's side (how a client ends stdin). The base64 variants
/// (<c>base64.channel.k8s.io</c>, <c>v4.base64.channel.k8s.io</c>) send text messages instead: the channel as an
/// ASCII digit (<c>'0' + channel</c>), then the data in standard base64.
/// </summary>
public sealed class ChannelWebSocket : IAsyncDisposable
{
    public const byte CloseSignal = 255;
    private const int MaxMessage = 1024 * 1024;

    private readonly WebSocket _socket;
    private readonly bool _closeSignals;
    private readonly bool _base64;
    private readonly Pipe?[] _inbound;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private Task? _receiveLoop;

    /// <param name="socket">An accepted WebSocket.</param>
    /// <param name="readable">Per channel, whether the peer may send on it; data on other channels is dropped.</param>
    /// <param name="closeSignals">Whether the v5 close signal is understood.</param>
    /// <param name="base64">Whether messages are text: a channel digit and base64 data.</param>
    public ChannelWebSocket(WebSocket socket, IReadOnlyList<bool> readable, bool closeSignals, bool base64 = false)
    {
        _socket = socket;
        _closeSignals = closeSignals;
        _base64 = base64;
        _inbound = new Pipe?[readable.Count];
        for (var i = 0; i < readable.Count; i++)
            if (readable[i]) _inbound[i] = new Pipe(new PipeOptions(pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024, useSynchronizationContext: false));
    }

    /// <summary>Cancelled when the peer closes or the connection fails.</summary>
    public CancellationToken Closed => _closed.Token;

    public Task RunAsync() => _receiveLoop ??= Task.Run(ReceiveLoopAsync);

    /// <summary>A stream for one channel: reads what the peer sends on it, writes go out prefixed with its number.</summary>
    public DuplexStream Channel(byte channel) => new ChannelStream(this, channel);

    private async Task ReceiveLoopAsync()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            var message = new ArrayBufferWriter<byte>();
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer.AsMemory(), _closed.Token);
                if (result.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer.AsSpan(0, result.Count));
                if (message.WrittenCount > MaxMessage) throw new WebSocketException(WebSocketError.InvalidState, $"a message exceeds {MaxMessage} bytes");
                if (!result.EndOfMessage) continue;
                await DispatchAsync(message.WrittenMemory);
                message.ResetWrittenCount();
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException or FormatException)
        {
            // FormatException: a base64 message that is not base64; the peer is not speaking the protocol.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            foreach (var pipe in _inbound) pipe?.Writer.Complete();
            _closed.Cancel();
        }
    }

    private async ValueTask DispatchAsync(ReadOnlyMemory<byte> message)
    {
        if (message.Length == 0) return;
        if (_base64)
        {
            await DispatchAsync((byte)(message.Span[0] - '0'), Decode(message.Span[1..]));
            return;
        }
        var channel = message.Span[0];
        if (_closeSignals && channel == CloseSignal)
        {
            if (message.Length >= 2 && message.Span[1] < _inbound.Length) _inbound[message.Span[1]]?.Writer.Complete();
            return;
        }
        await DispatchAsync(channel, message[1..]);
    }

    private static byte[] Decode(ReadOnlySpan<byte> text)
    {
        var data = new byte[System.Buffers.Text.Base64.GetMaxDecodedFromUtf8Length(text.Length)];
        if (System.Buffers.Text.Base64.DecodeFromUtf8(text, data, out _, out var written) != OperationStatus.Done)
            throw new FormatException("a message of a base64 channel protocol is not base64");
        return data[..written];
    }

    private async ValueTask DispatchAsync(byte channel, ReadOnlyMemory<byte> data)
    {
        if (channel >= _inbound.Length || _inbound[channel] is not { } pipe || data.Length == 0) return;
        try
        {
            await pipe.Writer.WriteAsync(data, _closed.Token);
        }
        catch (InvalidOperationException)
        {
            // The channel was closed by a close signal; late data is dropped.
        }
    }

    /// <summary>Sends one message on a channel. An empty payload still sends the channel byte (how a server says "open").</summary>
    public async ValueTask SendAsync(byte channel, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var length = _base64 ? 1 + System.Buffers.Text.Base64.GetMaxEncodedToUtf8Length(data.Length) : 1 + data.Length;
        var message = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            if (_base64)
            {
                message[0] = (byte)('0' + channel);
                System.Buffers.Text.Base64.EncodeToUtf8(data.Span, message.AsSpan(1), out _, out var written);
                length = 1 + written;
            }
            else
            {
                message[0] = channel;
                data.Span.CopyTo(message.AsSpan(1));
            }
            await _sendLock.WaitAsync(cancellationToken);
            try
            {
                await _socket.SendAsync(message.AsMemory(0, length), _base64 ? WebSocketMessageType.Text : WebSocketMessageType.Binary, true, cancellationToken);
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (WebSocketException e)
        {
            throw new IOException("the WebSocket is closed", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(message);
        }
    }

    /// <summary>Ends the v5 way for one channel, when the peer understands close signals; otherwise does nothing.</summary>
    public async ValueTask CloseChannelAsync(byte channel, CancellationToken cancellationToken)
    {
        if (!_closeSignals) return;
        await SendAsync(CloseSignal, new[] { channel }, cancellationToken);
    }

    private async ValueTask<int> ReadAsync(byte channel, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (channel >= _inbound.Length || _inbound[channel] is not { } pipe) return 0;
        ReadResult result;
        try
        {
            result = await pipe.Reader.ReadAsync(cancellationToken);
        }
        catch (InvalidOperationException)
        {
            return 0;
        }
        var available = result.Buffer;
        if (available.IsEmpty && result.IsCompleted)
        {
            pipe.Reader.AdvanceTo(available.End);
            return 0;
        }
        var count = (int)Math.Min(available.Length, buffer.Length);
        available.Slice(0, count).CopyTo(buffer.Span);
        pipe.Reader.AdvanceTo(available.GetPosition(count));
        return count;
    }

    /// <summary>Closes the WebSocket normally (and stops receiving).</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await _sendLock.WaitAsync();
            try
            {
                if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
                }
            }
            finally
            {
                _sendLock.Release();
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        // Wait for the peer's close before giving up on it: cancelling a pending receive aborts the socket, and a
        // reset can destroy what the peer has not read yet (the final status above all).
        if (_receiveLoop is not null) await _receiveLoop.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
        _closed.Cancel();
        if (_receiveLoop is not null) await _receiveLoop.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private sealed class ChannelStream(ChannelWebSocket owner, byte channel) : DuplexStream
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            buffer.Length == 0 ? ValueTask.FromResult(0) : owner.ReadAsync(channel, buffer, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            buffer.Length == 0 ? ValueTask.CompletedTask : owner.SendAsync(channel, buffer, cancellationToken);
    }
}
