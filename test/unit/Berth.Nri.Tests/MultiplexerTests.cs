using System.Buffers.Binary;
using Berth.Nri.Transport;

namespace Berth.Nri.Tests;

/// <summary>NRI's multiplexer: an 8-byte chunk header (connection ID, length, both big-endian) before each chunk.</summary>
public sealed class MultiplexerTests
{
    [Fact]
    public async Task A_write_on_a_connection_is_a_chunk_with_its_id_and_length()
    {
        var (trunk, peer) = SocketPair.Create();
        await using var mux = new Multiplexer(trunk);
        var connection = mux.Open(Multiplexer.RuntimeServiceConnection);
        mux.Start();

        await connection.WriteAsync(new byte[] { 0xAA, 0xBB, 0xCC });

        var bytes = new byte[Multiplexer.HeaderLength + 3];
        await peer.ReadExactlyAsync(bytes);
        Assert.Equal(new byte[] { 0, 0, 0, 2, 0, 0, 0, 3, 0xAA, 0xBB, 0xCC }, bytes);
    }

    [Fact]
    public async Task Chunks_reach_their_connection_as_one_byte_stream_and_chunks_for_an_unopened_one_are_dropped()
    {
        var (trunk, peer) = SocketPair.Create();
        await using var mux = new Multiplexer(trunk);
        var plugin = mux.Open(Multiplexer.PluginServiceConnection);
        mux.Start();

        await peer.WriteAsync(Chunk(9, [1, 2, 3]));
        await peer.WriteAsync(Chunk(1, [10, 11]));
        await peer.WriteAsync(Chunk(1, [12]));

        var read = new byte[3];
        await plugin.ReadExactlyAsync(read);
        Assert.Equal(new byte[] { 10, 11, 12 }, read);
    }

    [Fact]
    public async Task A_chunk_over_the_largest_ttrpc_frame_breaks_the_connection()
    {
        var (trunk, peer) = SocketPair.Create();
        await using var mux = new Multiplexer(trunk);
        var plugin = mux.Open(Multiplexer.PluginServiceConnection);
        mux.Start();

        var header = new byte[Multiplexer.HeaderLength];
        BinaryPrimitives.WriteUInt32BigEndian(header, 1);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), Multiplexer.MaxChunkLength + 1);
        await peer.WriteAsync(header);

        await Assert.ThrowsAsync<InvalidDataException>(() => mux.Completion);
        await Assert.ThrowsAnyAsync<Exception>(async () => await plugin.ReadExactlyAsync(new byte[1]));
    }

    [Fact]
    public async Task Ttrpc_runs_over_multiplexed_connections_in_both_directions()
    {
        var (runtimeEnd, pluginEnd) = SocketPair.Create();
        await using var runtimeMux = new Multiplexer(runtimeEnd);
        await using var pluginMux = new Multiplexer(pluginEnd);
        var services = new TtrpcServices().Add("nri.pkg.api.v1alpha1.Plugin", "Configure", Api.ConfigureRequest.Parser,
            (r, _) => Task.FromResult<Google.Protobuf.IMessage>(new Api.ConfigureResponse { Events = r.RuntimeName.Length }));
        await using var pluginServer = new TtrpcChannel(pluginMux.Open(Multiplexer.PluginServiceConnection), services);
        await using var runtimeClient = new TtrpcChannel(runtimeMux.Open(Multiplexer.PluginServiceConnection));
        pluginServer.Start();
        runtimeClient.Start();
        pluginMux.Start();
        runtimeMux.Start();

        var answer = await runtimeClient.CallAsync("nri.pkg.api.v1alpha1.Plugin", "Configure", new Api.ConfigureRequest { RuntimeName = "berth" },
            Api.ConfigureResponse.Parser, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Equal(5, answer.Events);
    }

    private static byte[] Chunk(uint id, byte[] payload)
    {
        var chunk = new byte[Multiplexer.HeaderLength + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, id);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(4), (uint)payload.Length);
        payload.CopyTo(chunk, Multiplexer.HeaderLength);
        return chunk;
    }
}
