using System.Net.WebSockets;
using System.Text;
using Berth.Streaming.WebSockets;

namespace Berth.Streaming.Tests;

public sealed class ChannelWebSocketTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static (ChannelWebSocket Server, WebSocket Client) Connect(bool[] readable, bool v5, bool base64 = false)
    {
        var (serverEnd, clientEnd) = DuplexPipe.Create();
        var server = WebSocket.CreateFromStream(serverEnd, new WebSocketCreationOptions { IsServer = true });
        var client = WebSocket.CreateFromStream(clientEnd, new WebSocketCreationOptions { IsServer = false });
        var channels = new ChannelWebSocket(server, readable, v5, base64);
        _ = channels.RunAsync();
        return (channels, client);
    }

    [Fact]
    public async Task Messages_are_prefixed_with_their_channel()
    {
        var (server, client) = Connect([false, false, false], v5: false);
        await server.Channel(2).WriteAsync("err"u8.ToArray());
        await server.SendAsync(1, ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        Assert.Equal("02657272", await Receive(client));
        Assert.Equal("01", await Receive(client)); // an empty message still names its channel
    }

    [Fact]
    public async Task Client_messages_reach_their_channel_and_others_are_dropped()
    {
        var (server, client) = Connect([true, false, false, false, true], v5: false);
        await client.SendAsync(new byte[] { 4, (byte)'x' }, WebSocketMessageType.Binary, true, CancellationToken.None);
        await client.SendAsync(new byte[] { 1, (byte)'y' }, WebSocketMessageType.Binary, true, CancellationToken.None); // stdout is not readable
        await client.SendAsync(new byte[] { 0, (byte)'a', (byte)'b' }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var buffer = new byte[10];
        Assert.Equal("ab", Encoding.ASCII.GetString(buffer, 0, await server.Channel(0).ReadAsync(buffer).AsTask().WaitAsync(Wait)));
        Assert.Equal("x", Encoding.ASCII.GetString(buffer, 0, await server.Channel(4).ReadAsync(buffer).AsTask().WaitAsync(Wait)));
    }

    [Fact]
    public async Task V5_close_signal_ends_one_channel()
    {
        var (server, client) = Connect([true, false, false, false, true], v5: true);
        await client.SendAsync(new byte[] { 0, (byte)'z' }, WebSocketMessageType.Binary, true, CancellationToken.None);
        await client.SendAsync(new byte[] { 255, 0 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        using var stdin = new MemoryStream();
        await server.Channel(0).CopyToAsync(stdin).WaitAsync(Wait);
        Assert.Equal("z", Encoding.ASCII.GetString(stdin.ToArray()));
        Assert.False(server.Closed.IsCancellationRequested); // the socket itself is still open
    }

    [Fact]
    public async Task A_client_close_ends_every_channel()
    {
        var (server, client) = Connect([true], v5: false);
        await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        Assert.Equal(0, await server.Channel(0).ReadAsync(new byte[4]).AsTask().WaitAsync(Wait));
        await Task.Delay(100);
        Assert.True(server.Closed.IsCancellationRequested);
    }

    [Fact]
    public async Task Base64_protocols_send_text_a_channel_digit_then_base64()
    {
        var (server, client) = Connect([false, false, false], v5: false, base64: true);
        await server.Channel(1).WriteAsync(new byte[] { 0, 0xFF, (byte)'h', (byte)'i' });
        await server.SendAsync(2, ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        Assert.Equal("1AP9oaQ==", await ReceiveText(client));
        Assert.Equal("2", await ReceiveText(client)); // the empty "open" message
    }

    [Fact]
    public async Task Base64_client_messages_are_decoded_onto_their_channel()
    {
        var (server, client) = Connect([true, false, false, false, true], v5: false, base64: true);
        await client.SendAsync("4eyJXaWR0aCI6ODB9"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        await client.SendAsync("0AP9h"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[32];
        Assert.Equal("{\"Width\":80}", Encoding.ASCII.GetString(buffer, 0, await server.Channel(4).ReadAsync(buffer).AsTask().WaitAsync(Wait)));
        var read = await server.Channel(0).ReadAsync(buffer).AsTask().WaitAsync(Wait);
        Assert.Equal(new byte[] { 0, 0xFF, (byte)'a' }, buffer[..read]);
    }

    [Fact]
    public async Task A_base64_message_that_is_not_base64_ends_the_session()
    {
        var (server, client) = Connect([true], v5: false, base64: true);
        await client.SendAsync("0not base64!"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal(0, await server.Channel(0).ReadAsync(new byte[4]).AsTask().WaitAsync(Wait));
        await Task.Delay(100);
        Assert.True(server.Closed.IsCancellationRequested);
    }

    private static async Task<string> ReceiveText(WebSocket client)
    {
        var buffer = new byte[1024];
        var result = await client.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(Wait);
        Assert.True(result.EndOfMessage);
        Assert.Equal(WebSocketMessageType.Text, result.MessageType);
        return Encoding.ASCII.GetString(buffer, 0, result.Count);
    }

    private static async Task<string> Receive(WebSocket client)
    {
        var buffer = new byte[1024];
        var result = await client.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(Wait);
        Assert.True(result.EndOfMessage);
        Assert.Equal(WebSocketMessageType.Binary, result.MessageType);
        return Convert.ToHexStringLower(buffer.AsSpan(0, result.Count));
    }
}
