using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Berth.Streaming.Spdy;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// A SPDY/3.1 client written for the tests, independent of the server's session code: the HTTP upgrade, frames
/// written and parsed by hand, header blocks compressed by System.IO.Compression (a zlib stream without the
/// dictionary, which SPDY peers must accept), and flow control kept on both sides. Only the inflater for the
/// server's dictionary-compressed replies is borrowed from Berth.Streaming.
/// </summary>
public sealed class SpdyTestClient : IAsyncDisposable
{
    private const int InitialWindow = 64 * 1024;
    private const int OfferedWindow = 1024 * 1024;
    private readonly TcpClient _tcp;
    private readonly Stream _network;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly MemoryStream _compressedOut = new();
    private readonly ZLibStream _deflater;
    private readonly SpdyHeaderCompression _inflater = SpdyHeaderCompression.CreateInflater();
    private readonly ConcurrentDictionary<int, ClientStream> _streams = new();
    private readonly Task _readLoop;
    private readonly Lock _windowLock = new();
    private long _sessionWindow = InitialWindow;
    private TaskCompletionSource _windowOpened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _nextId = 1;
    private volatile bool _peerKeepsWindows;
    private int _sessionUnacknowledged;
    private int _initialSendWindow = InitialWindow;

    public string Protocol { get; }
    public TaskCompletionSource GoAway { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SpdyTestClient(TcpClient tcp, Stream network, string protocol)
    {
        _tcp = tcp;
        _network = network;
        Protocol = protocol;
        _deflater = new ZLibStream(_compressedOut, CompressionLevel.Optimal, leaveOpen: true);
        _readLoop = Task.Run(async () =>
        {
            // Offer the server a 1 MiB window per stream (SETTINGS) and for the session (WINDOW_UPDATE on stream 0).
            var settings = new byte[20];
            BinaryPrimitives.WriteUInt32BigEndian(settings, 0x80030004);
            BinaryPrimitives.WriteUInt32BigEndian(settings.AsSpan(4), 12);
            BinaryPrimitives.WriteInt32BigEndian(settings.AsSpan(8), 1);
            BinaryPrimitives.WriteInt32BigEndian(settings.AsSpan(12), 7);
            BinaryPrimitives.WriteInt32BigEndian(settings.AsSpan(16), OfferedWindow);
            await WriteFrameAsync(settings);
            await WindowUpdateAsync(0, OfferedWindow - InitialWindow);
            await ReadLoopAsync();
        });
    }

    /// <summary>Upgrades a streaming URL; returns the HTTP status and body instead when the server refuses.</summary>
    public static Task<(SpdyTestClient? Client, int Status, string Body)> ConnectAsync(string url, params string[] protocols) =>
        ConnectAsync(url, trusted: null, protocols);

    /// <summary>As above; an https URL must present <paramref name="trusted"/>.</summary>
    public static async Task<(SpdyTestClient? Client, int Status, string Body)> ConnectAsync(
        string url, System.Security.Cryptography.X509Certificates.X509Certificate2? trusted, params string[] protocols)
    {
        var uri = new Uri(url);
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(uri.Host, uri.Port);
        Stream network = tcp.GetStream();
        if (uri.Scheme == "https")
        {
            var tls = new System.Net.Security.SslStream(network, false, (_, certificate, _, _) =>
                trusted is not null && certificate is not null && certificate.GetCertHashString() == trusted.GetCertHashString());
            await tls.AuthenticateAsClientAsync(uri.Host);
            network = tls;
        }
        var request = new StringBuilder($"POST {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n");
        foreach (var protocol in protocols) request.Append($"X-Stream-Protocol-Version: {protocol}\r\n");
        await network.WriteAsync(Encoding.ASCII.GetBytes(request.Append("\r\n").ToString()));
        var head = new List<byte>();
        while (head.Count < 4 || !head.TakeLast(4).SequenceEqual("\r\n\r\n"u8.ToArray()))
        {
            var b = network.ReadByte();
            if (b < 0) break;
            head.Add((byte)b);
        }
        var lines = Encoding.ASCII.GetString([.. head]).Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1]);
        if (status != 101)
        {
            var body = new byte[4096];
            var read = 0;
            try
            {
                read = await network.ReadAsync(body).AsTask().WaitAsync(TimeSpan.FromSeconds(2));
            }
            catch (TimeoutException)
            {
            }
            tcp.Dispose();
            return (null, status, Encoding.UTF8.GetString(body, 0, read));
        }
        var negotiated = lines.FirstOrDefault(l => l.StartsWith("X-Stream-Protocol-Version:", StringComparison.OrdinalIgnoreCase))?.Split(':', 2)[1].Trim() ?? "";
        return (new SpdyTestClient(tcp, network, negotiated), status, "");
    }

    /// <summary>Opens a stream (SYN_STREAM) and waits for the server's SYN_REPLY.</summary>
    public async Task<ClientStream> OpenAsync(params (string Name, string Value)[] headers)
    {
        var block = new MemoryStream();
        var number = new byte[4];
        void Int(int value)
        {
            BinaryPrimitives.WriteInt32BigEndian(number, value);
            block.Write(number);
        }
        Int(headers.Length);
        foreach (var (name, value) in headers)
        {
            var n = Encoding.UTF8.GetBytes(name.ToLowerInvariant());
            var v = Encoding.UTF8.GetBytes(value);
            Int(n.Length);
            block.Write(n);
            Int(v.Length);
            block.Write(v);
        }
        ClientStream stream;
        await _writeLock.WaitAsync();
        try
        {
            // Under the window lock, so a SETTINGS frame read meanwhile adjusts this stream too.
            lock (_windowLock)
            {
                stream = new ClientStream(this, _nextId) { SendWindow = _initialSendWindow };
                _streams[stream.Id] = stream;
            }
            _nextId += 2;
            _compressedOut.SetLength(0);
            _deflater.Write(block.ToArray());
            _deflater.Flush();
            var compressed = _compressedOut.ToArray();
            var frame = new byte[18 + compressed.Length];
            BinaryPrimitives.WriteUInt32BigEndian(frame, 0x80030001);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), (uint)(10 + compressed.Length));
            BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), stream.Id);
            compressed.CopyTo(frame, 18);
            await _network.WriteAsync(frame);
        }
        finally
        {
            _writeLock.Release();
        }
        await stream.Replied.Task.WaitAsync(TimeSpan.FromSeconds(10));
        return stream;
    }

    private async Task WriteFrameAsync(byte[] frame)
    {
        await _writeLock.WaitAsync();
        try
        {
            await _network.WriteAsync(frame);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    internal async Task SendDataAsync(ClientStream stream, ReadOnlyMemory<byte> data, bool fin)
    {
        do
        {
            var chunk = Math.Min(data.Length, 32 * 1024);
            // Like berthd, hold to the server's windows once it shows it keeps them: a spdystream server (containerd,
            // the kubelet's library) never grants window.
            while (chunk > 0 && _peerKeepsWindows)
            {
                Task opened;
                lock (_windowLock)
                {
                    var allowed = (int)Math.Min(Math.Min(stream.SendWindow, _sessionWindow), chunk);
                    if (allowed > 0)
                    {
                        chunk = allowed;
                        stream.SendWindow -= allowed;
                        _sessionWindow -= allowed;
                        break;
                    }
                    opened = _windowOpened.Task;
                }
                await opened.WaitAsync(TimeSpan.FromSeconds(30));
            }
            var frame = new byte[8 + chunk];
            BinaryPrimitives.WriteInt32BigEndian(frame, stream.Id);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), ((fin && chunk == data.Length ? 1u : 0u) << 24) | (uint)chunk);
            data[..chunk].CopyTo(frame.AsMemory(8));
            await WriteFrameAsync(frame);
            data = data[chunk..];
        }
        while (data.Length > 0);
    }

    private Task WindowUpdateAsync(int streamId, int delta)
    {
        var frame = new byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(frame, 0x80030009);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), 8);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), streamId);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(12), delta);
        return WriteFrameAsync(frame);
    }

    private void SendWindowUpdate(int streamId, int delta) => _ = Task.Run(async () =>
    {
        try
        {
            await WindowUpdateAsync(streamId, delta);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The connection is closing.
        }
    });

    private async Task ReadLoopAsync()
    {
        var header = new byte[8];
        try
        {
            while (true)
            {
                await _network.ReadExactlyAsync(header);
                var length = (int)(BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)) & 0xFFFFFF);
                var flags = header[4];
                var payload = new byte[length];
                await _network.ReadExactlyAsync(payload);
                if ((header[0] & 0x80) == 0)
                {
                    var id = BinaryPrimitives.ReadInt32BigEndian(header) & 0x7FFFFFFF;
                    if (!_streams.TryGetValue(id, out var stream)) continue;
                    if (payload.Length > 0)
                    {
                        stream.Inbound.Writer.TryWrite(payload);
                        // Window goes back in batches of a quarter of the offered window, per stream and for the session.
                        stream.Unacknowledged += payload.Length;
                        // Sent without waiting: a writer holding the connection may be blocked on a full socket
                        // that only drains if this loop goes on reading (a server that ignores windows fills it).
                        if (stream.Unacknowledged >= OfferedWindow / 4)
                        {
                            SendWindowUpdate(id, stream.Unacknowledged);
                            stream.Unacknowledged = 0;
                        }
                        _sessionUnacknowledged += payload.Length;
                        if (_sessionUnacknowledged >= OfferedWindow / 4)
                        {
                            SendWindowUpdate(0, _sessionUnacknowledged);
                            _sessionUnacknowledged = 0;
                        }
                    }
                    if ((flags & 1) != 0) stream.Inbound.Writer.TryComplete();
                    continue;
                }
                var type = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2));
                var streamId = length >= 4 ? BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7FFFFFFF : 0;
                switch (type)
                {
                    case 2: // SYN_REPLY
                        _ = SpdyHeaderBlock.Decode(_inflater.Decompress(payload.AsSpan(4), 64 * 1024));
                        if (_streams.TryGetValue(streamId, out var replied))
                        {
                            replied.Replied.TrySetResult();
                            if ((flags & 1) != 0) replied.Inbound.Writer.TryComplete();
                        }
                        break;
                    case 3: // RST_STREAM
                        if (_streams.TryGetValue(streamId, out var reset))
                        {
                            reset.WasReset = true;
                            reset.Replied.TrySetResult();
                            reset.Inbound.Writer.TryComplete();
                        }
                        break;
                    case 7:
                        GoAway.TrySetResult();
                        break;
                    case 4: // SETTINGS: only the initial window matters here
                        for (var i = 0; i < BinaryPrimitives.ReadInt32BigEndian(payload); i++)
                        {
                            var entry = payload.AsSpan(4 + 8 * i, 8);
                            if ((BinaryPrimitives.ReadUInt32BigEndian(entry) & 0xFFFFFF) != 7) continue;
                            var window = BinaryPrimitives.ReadInt32BigEndian(entry[4..]);
                            lock (_windowLock)
                            {
                                _peerKeepsWindows = true;
                                foreach (var open in _streams.Values) open.SendWindow += window - _initialSendWindow;
                                _initialSendWindow = window;
                            }
                        }
                        break;
                    case 9: // WINDOW_UPDATE
                        var delta = BinaryPrimitives.ReadInt32BigEndian(payload.AsSpan(4));
                        lock (_windowLock)
                        {
                            _peerKeepsWindows = true;
                            if (streamId == 0) _sessionWindow += delta;
                            else if (_streams.TryGetValue(streamId, out var updated)) updated.SendWindow += delta;
                            var opened = _windowOpened;
                            _windowOpened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                            opened.TrySetResult();
                        }
                        break;
                }
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            foreach (var stream in _streams.Values) stream.Inbound.Writer.TryComplete();
            GoAway.TrySetResult();
        }
    }

    /// <summary>Drops the TCP connection at once (RST), as a killed client would.</summary>
    public void Abort()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        await _readLoop.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        _inflater.Dispose();
        await _deflater.DisposeAsync();
    }

    public sealed class ClientStream(SpdyTestClient client, int id)
    {
        public int Id { get; } = id;
        internal long SendWindow { get; set; } = InitialWindow;
        internal int Unacknowledged { get; set; }
        internal TaskCompletionSource Replied { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        internal Channel<byte[]> Inbound { get; } = Channel.CreateUnbounded<byte[]>();
        public bool WasReset { get; internal set; }

        public Task WriteAsync(ReadOnlyMemory<byte> data) => client.SendDataAsync(this, data, fin: false);

        public Task WriteAsync(string text) => WriteAsync(Encoding.UTF8.GetBytes(text));

        public Task CloseAsync() => client.SendDataAsync(this, ReadOnlyMemory<byte>.Empty, fin: true);

        /// <summary>Everything the server sends until its FIN.</summary>
        public async Task<byte[]> ReadToEndAsync(TimeSpan? timeout = null)
        {
            using var all = new MemoryStream();
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
            await foreach (var chunk in Inbound.Reader.ReadAllAsync(cts.Token)) all.Write(chunk);
            return all.ToArray();
        }

        /// <summary>Reads to the end and keeps only the count: for throughput, where the bytes themselves do not matter.</summary>
        public async Task<long> CountToEndAsync(TimeSpan? timeout = null)
        {
            long total = 0;
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
            await foreach (var chunk in Inbound.Reader.ReadAllAsync(cts.Token)) total += chunk.Length;
            return total;
        }

        public async Task<string> ReadTextToEndAsync(TimeSpan? timeout = null) => Encoding.UTF8.GetString(await ReadToEndAsync(timeout));

        /// <summary>Reads until the text seen so far contains <paramref name="expected"/>.</summary>
        public async Task<string> ReadUntilAsync(string expected, TimeSpan? timeout = null)
        {
            var seen = new StringBuilder();
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
            await foreach (var chunk in Inbound.Reader.ReadAllAsync(cts.Token))
            {
                seen.Append(Encoding.UTF8.GetString(chunk));
                if (seen.ToString().Contains(expected, StringComparison.Ordinal)) break;
            }
            return seen.ToString();
        }
    }
}
