using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Berth.Streaming.Spdy;

namespace Berth.Streaming.Tests;

public sealed class SpdyConnectionTests : IAsyncLifetime
{
    private readonly Stream _server;
    private readonly Stream _client;
    private readonly SpdyConnection _connection;
    private readonly SpdyHeaderCompression _clientDeflater = SpdyHeaderCompression.CreateDeflater();
    private readonly SpdyHeaderCompression _clientInflater = SpdyHeaderCompression.CreateInflater();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    public SpdyConnectionTests()
    {
        (_server, _client) = DuplexPipe.Create();
        _connection = new SpdyConnection(_server);
    }

    public async Task InitializeAsync()
    {
        _ = _connection.RunAsync();
        // The session opens by offering a 1 MiB window per stream and for the session.
        var settings = await ReadFrame();
        Assert.Equal((ushort)SpdyControlType.Settings, settings.Type);
        Assert.Equal("00000001" + "00000007" + "00100000", Convert.ToHexStringLower(settings.Payload));
        var session = await ReadFrame();
        Assert.Equal((ushort)SpdyControlType.WindowUpdate, session.Type);
        Assert.Equal("00000000" + "000f0000", Convert.ToHexStringLower(session.Payload));
    }

    public async Task DisposeAsync()
    {
        await _connection.DisposeAsync();
        _client.Dispose();
        _server.Dispose();
        _clientDeflater.Dispose();
        _clientInflater.Dispose();
    }

    [Fact]
    public async Task A_client_stream_is_accepted_replied_and_carries_data_both_ways()
    {
        await SendSynStream(1, ("streamType", "stdin"));
        var stream = (await _connection.AcceptStreamAsync(CancellationToken.None).AsTask().WaitAsync(Wait))!;
        Assert.Equal(1, stream.Id);
        Assert.Equal("stdin", stream.Header("streamtype"));

        await stream.ReplyAsync();
        var reply = await ReadFrame();
        Assert.Equal((true, (ushort)SpdyControlType.SynReply), (reply.Control, reply.Type));
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(reply.Payload));
        Assert.Empty(SpdyHeaderBlock.Decode(_clientInflater.Decompress(reply.Payload.AsSpan(4), 1024)));

        await SendData(1, "hello"u8.ToArray(), fin: true);
        Assert.Equal("hello", await ReadToEnd(stream));

        await stream.WriteAsync("back"u8.ToArray());
        await stream.CloseWriteAsync();
        var data = await ReadFrame();
        Assert.Equal((false, 1, "back"), (data.Control, data.StreamId, Encoding.ASCII.GetString(data.Payload)));
        var fin = await ReadFrame();
        Assert.Equal((false, 1, SpdyFlags.Fin, 0), (fin.Control, fin.StreamId, fin.Flags, fin.Payload.Length));
    }

    [Fact]
    public async Task Client_pings_are_echoed()
    {
        await Send(w => SpdyFrameWriter.WritePing(w, 41));
        var pong = await ReadFrame();
        Assert.Equal((ushort)SpdyControlType.Ping, pong.Type);
        Assert.Equal(41u, BinaryPrimitives.ReadUInt32BigEndian(pong.Payload));
    }

    [Fact]
    public async Task Sends_wait_for_the_window_of_a_peer_that_does_flow_control()
    {
        await Send(w => SpdyFrameWriter.WriteSettings(w, 0, [(SpdySettingId.InitialWindowSize, 10)]));
        var stream = await OpenRepliedStream("stdout");

        var write = stream.WriteAsync(new byte[25]).AsTask();
        Assert.Equal(10, (await ReadFrame()).Payload.Length);
        await Task.Delay(200);
        Assert.False(write.IsCompleted); // the window is spent
        await Send(w => SpdyFrameWriter.WriteWindowUpdate(w, 1, 15));
        Assert.Equal(15, (await ReadFrame()).Payload.Length);
        await write.WaitAsync(Wait);
    }

    [Fact]
    public async Task A_peer_that_never_grants_window_still_gets_all_data()
    {
        // spdystream (every Kubernetes client) ignores flow control; holding to 64 KiB would stall it.
        var stream = await OpenRepliedStream("stdout");
        var write = stream.WriteAsync(new byte[200_000]).AsTask();
        var received = 0;
        while (received < 200_000) received += (await ReadFrame()).Payload.Length;
        await write.WaitAsync(Wait);
    }

    [Fact]
    public async Task Consumed_data_is_granted_back_as_window()
    {
        var stream = await OpenRepliedStream("stdin");
        await SendData(1, new byte[300_000], fin: true); // granted back in batches of a quarter window
        Assert.Equal(300_000, (await ReadToEnd(stream)).Length);
        var streamUpdate = await ReadFrame();
        var sessionUpdate = await ReadFrame();
        Assert.Equal((ushort)SpdyControlType.WindowUpdate, streamUpdate.Type);
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(streamUpdate.Payload));
        Assert.InRange(BinaryPrimitives.ReadInt32BigEndian(streamUpdate.Payload.AsSpan(4)), 256 * 1024, 300_000);
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(sessionUpdate.Payload));
        Assert.InRange(BinaryPrimitives.ReadInt32BigEndian(sessionUpdate.Payload.AsSpan(4)), 256 * 1024, 300_000);
    }

    [Fact]
    public async Task Data_sent_on_to_a_socket_arrives_whole_and_in_order_and_is_granted_back()
    {
        // Port-forward's path: frames go from the stream's buffers to the pod's socket without a copy between.
        var stream = await OpenRepliedStream("data");
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await sender.ConnectAsync(listener.LocalEndPoint!);
        using var receiver = await listener.AcceptAsync();
        var payload = new byte[300_000];
        for (var i = 0; i < payload.Length; i++) payload[i] = (byte)(i % 251);

        var pump = stream.SendToAsync(sender, CancellationToken.None);
        var received = new MemoryStream();
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[8192];
            int read;
            while ((read = await receiver.ReceiveAsync(buffer)) > 0) received.Write(buffer, 0, read);
        });
        for (var offset = 0; offset < payload.Length; offset += 50_000)
            await SendData(1, payload[offset..(offset + 50_000)], fin: offset + 50_000 == payload.Length);
        await pump.WaitAsync(Wait);
        sender.Shutdown(SocketShutdown.Send);
        await reading.WaitAsync(Wait);

        Assert.Equal(payload, received.ToArray());
        var streamUpdate = await ReadFrame();
        Assert.Equal((ushort)SpdyControlType.WindowUpdate, streamUpdate.Type);
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(streamUpdate.Payload));
        Assert.InRange(BinaryPrimitives.ReadInt32BigEndian(streamUpdate.Payload.AsSpan(4)), 256 * 1024, 300_000);
    }

    [Fact]
    public async Task A_reset_from_the_peer_ends_reads()
    {
        await SendSynStream(1, ("streamType", "stdin"));
        var stream = (await _connection.AcceptStreamAsync(CancellationToken.None).AsTask().WaitAsync(Wait))!;
        await Send(w => SpdyFrameWriter.WriteRstStream(w, 1, SpdyRstStatus.Cancel));
        Assert.Equal(0, await stream.ReadAsync(new byte[10]).AsTask().WaitAsync(Wait));
        await Assert.ThrowsAsync<IOException>(() => stream.WriteAsync(new byte[1]).AsTask());
    }

    [Fact]
    public async Task A_stream_id_that_goes_backwards_ends_the_session_with_a_protocol_error()
    {
        await SendSynStream(3, ("streamType", "stdin"));
        await SendSynStream(1, ("streamType", "stdout"));
        Frame frame;
        do frame = await ReadFrame();
        while (frame.Type != (ushort)SpdyControlType.GoAway);
        Assert.Equal(3, BinaryPrimitives.ReadInt32BigEndian(frame.Payload));
        Assert.Equal((int)SpdyGoAwayStatus.ProtocolError, BinaryPrimitives.ReadInt32BigEndian(frame.Payload.AsSpan(4)));
        await _connection.RunAsync().WaitAsync(Wait);
    }

    [Fact]
    public async Task A_silent_peer_is_dropped_after_the_idle_timeout()
    {
        var (server, client) = DuplexPipe.Create();
        await using var connection = new SpdyConnection(server, new SpdyConnectionOptions { IdleTimeout = TimeSpan.FromMilliseconds(300) });
        var run = connection.RunAsync();
        await client.WriteAsync(Convert.FromHexString("800300060000000400000001")); // a ping keeps it alive a little longer
        await run.WaitAsync(Wait);
        Assert.True(connection.Closed.IsCancellationRequested);
        client.Dispose();
        server.Dispose();
    }

    /// <summary>The client opens stream 1 of <paramref name="type"/>; the server accepts and replies, and the reply is read.</summary>
    private async Task<SpdyStream> OpenRepliedStream(string type)
    {
        await SendSynStream(1, ("streamType", type));
        var stream = (await _connection.AcceptStreamAsync(CancellationToken.None).AsTask().WaitAsync(Wait))!;
        await stream.ReplyAsync();
        _ = await ReadFrame();
        return stream;
    }

    private async Task SendSynStream(int id, params (string Name, string Value)[] headers)
    {
        var plain = new ArrayBufferWriter<byte>();
        SpdyHeaderBlock.Encode([.. headers.Select(h => new KeyValuePair<string, string>(h.Name, h.Value))], plain);
        var compressed = new ArrayBufferWriter<byte>();
        _clientDeflater.Compress(plain.WrittenSpan, compressed);
        await Send(w => SpdyFrameWriter.WriteSynStream(w, id, 0, 0, 0, compressed.WrittenSpan));
    }

    private Task SendData(int id, byte[] data, bool fin) => Send(w =>
    {
        SpdyFrameWriter.WriteDataHeader(w, id, fin ? SpdyFlags.Fin : (byte)0, data.Length);
        w.Write(data);
    });

    private async Task Send(Action<IBufferWriter<byte>> frame)
    {
        var buffer = new ArrayBufferWriter<byte>();
        frame(buffer);
        await _client.WriteAsync(buffer.WrittenMemory);
        await _client.FlushAsync();
    }

    private sealed record Frame(bool Control, ushort Type, int StreamId, byte Flags, byte[] Payload);

    private async Task<Frame> ReadFrame()
    {
        var header = new byte[8];
        await _client.ReadExactlyAsync(header).AsTask().WaitAsync(Wait);
        var parsed = SpdyFrameHeader.Parse(header);
        var payload = new byte[parsed.Length];
        await _client.ReadExactlyAsync(payload).AsTask().WaitAsync(Wait);
        return new Frame(parsed.IsControl, (ushort)parsed.Type, parsed.StreamId, parsed.Flags, payload);
    }

    private static async Task<string> ReadToEnd(Stream stream)
    {
        using var memory = new MemoryStream();
        await stream.CopyToAsync(memory).WaitAsync(Wait);
        return Encoding.ASCII.GetString(memory.ToArray());
    }
}
