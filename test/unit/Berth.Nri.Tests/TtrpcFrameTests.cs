using Berth.Nri.Api;
using Berth.Nri.Transport;
using Berth.Nri.Ttrpc.Wire;
using Google.Protobuf;

namespace Berth.Nri.Tests;

/// <summary>ttrpc's framing, checked against the bytes PROTOCOL.md defines.</summary>
public sealed class TtrpcFrameTests
{
    [Fact]
    public void Header_is_length_stream_id_big_endian_then_type_and_flags()
    {
        var header = new byte[TtrpcFrame.HeaderLength];
        new TtrpcFrame(0x0102, 0x0A0B0C0D, TtrpcMessageType.Data, TtrpcFrame.FlagRemoteClosed | TtrpcFrame.FlagNoData).Write(header);

        Assert.Equal(new byte[] { 0x00, 0x00, 0x01, 0x02, 0x0A, 0x0B, 0x0C, 0x0D, 0x03, 0x05 }, header);
        Assert.Equal(new TtrpcFrame(0x0102, 0x0A0B0C0D, TtrpcMessageType.Data, 0x05), TtrpcFrame.Read(header));
    }

    [Fact]
    public async Task A_call_is_one_request_frame_on_an_odd_stream_and_the_answer_comes_on_the_same_stream()
    {
        var (runtime, plugin) = SocketPair.Create();
        await using var channel = new TtrpcChannel(runtime);
        channel.Start();

        var call = channel.CallAsync("nri.pkg.api.v1alpha1.Plugin", "Configure", new ConfigureRequest { RuntimeName = "berth" }, ConfigureResponse.Parser, TimeSpan.FromSeconds(5), CancellationToken.None);

        var (frame, data) = await ReadFrameAsync(plugin);
        Assert.Equal(TtrpcMessageType.Request, frame.Type);
        Assert.Equal(1u, frame.StreamId);
        Assert.Equal(0, frame.Flags);
        var request = Request.Parser.ParseFrom(data);
        Assert.Equal("nri.pkg.api.v1alpha1.Plugin", request.Service);
        Assert.Equal("Configure", request.Method);
        Assert.Equal(5_000_000_000, request.TimeoutNano);
        Assert.Equal("berth", ConfigureRequest.Parser.ParseFrom(request.Payload).RuntimeName);
        // The Request message's own bytes: field 1 (service) is tag 0x0A, a length, the UTF-8 name.
        Assert.Equal(0x0A, data[0]);
        Assert.Equal("nri.pkg.api.v1alpha1.Plugin".Length, data[1]);

        await WriteFrameAsync(plugin, new TtrpcFrame(0, 1, TtrpcMessageType.Response, 0), new Response { Payload = new ConfigureResponse { Events = 0x12 }.ToByteString() });
        Assert.Equal(0x12, (await call).Events);

        var second = channel.CallAsync("s", "m", new Empty(), Empty.Parser, TimeSpan.FromSeconds(5), CancellationToken.None);
        var (next, _) = await ReadFrameAsync(plugin);
        Assert.Equal(3u, next.StreamId);
        await WriteFrameAsync(plugin, new TtrpcFrame(0, 3, TtrpcMessageType.Response, 0), new Response());
        await second;
    }

    [Fact]
    public async Task An_error_status_in_the_response_is_thrown_with_its_code()
    {
        var (runtime, plugin) = SocketPair.Create();
        await using var channel = new TtrpcChannel(runtime);
        channel.Start();
        var call = channel.CallAsync("s", "m", new Empty(), Empty.Parser, TimeSpan.FromSeconds(5), CancellationToken.None);
        var (frame, _) = await ReadFrameAsync(plugin);
        await WriteFrameAsync(plugin, new TtrpcFrame(0, frame.StreamId, TtrpcMessageType.Response, 0),
            new Response { Status = new Status { Code = (int)RpcCode.FailedPrecondition, Message = "no" } });

        var error = await Assert.ThrowsAsync<TtrpcException>(() => call);
        Assert.Equal(RpcCode.FailedPrecondition, error.Code);
        Assert.Equal("no", error.Message);
        Assert.False(error.IsFatal);
    }

    [Fact]
    public async Task A_server_answers_an_unknown_method_Unimplemented_and_an_oversized_frame_ResourceExhausted()
    {
        var (runtime, plugin) = SocketPair.Create();
        var services = new TtrpcServices().Add("svc", "Known", Empty.Parser, (_, _) => Task.FromResult<IMessage>(new Empty()));
        await using var server = new TtrpcChannel(plugin, services);
        server.Start();

        await WriteFrameAsync(runtime, new TtrpcFrame(0, 7, TtrpcMessageType.Request, 0), new Request { Service = "svc", Method = "Unknown" });
        var (frame, data) = await ReadFrameAsync(runtime);
        Assert.Equal((TtrpcMessageType.Response, 7u), (frame.Type, frame.StreamId));
        Assert.Equal((int)RpcCode.Unimplemented, Response.Parser.ParseFrom(data).Status.Code);

        // Four MiB and one byte of data: refused by its header, the data skipped, the connection still good.
        var header = new byte[TtrpcFrame.HeaderLength];
        new TtrpcFrame(TtrpcFrame.MaxDataLength + 1, 9, TtrpcMessageType.Request, 0).Write(header);
        await runtime.WriteAsync(header);
        await runtime.WriteAsync(new byte[TtrpcFrame.MaxDataLength + 1]);
        (frame, data) = await ReadFrameAsync(runtime);
        Assert.Equal(9u, frame.StreamId);
        Assert.Equal((int)RpcCode.ResourceExhausted, Response.Parser.ParseFrom(data).Status.Code);

        await WriteFrameAsync(runtime, new TtrpcFrame(0, 11, TtrpcMessageType.Request, 0), new Request { Service = "svc", Method = "Known" });
        (frame, data) = await ReadFrameAsync(runtime);
        Assert.Equal(11u, frame.StreamId);
        Assert.Null(Response.Parser.ParseFrom(data).Status);
    }

    [Fact]
    public async Task A_call_without_an_answer_times_out_fatally_and_a_closed_connection_fails_calls()
    {
        var (runtime, plugin) = SocketPair.Create();
        await using var channel = new TtrpcChannel(runtime);
        channel.Start();
        var timedOut = await Assert.ThrowsAsync<TtrpcException>(() => channel.CallAsync("s", "m", new Empty(), Empty.Parser, TimeSpan.FromMilliseconds(100), CancellationToken.None));
        Assert.Equal(RpcCode.DeadlineExceeded, timedOut.Code);
        Assert.True(timedOut.IsFatal);

        var pending = channel.CallAsync("s", "m", new Empty(), Empty.Parser, TimeSpan.FromSeconds(30), CancellationToken.None);
        await plugin.DisposeAsync();
        var closed = await Assert.ThrowsAsync<TtrpcException>(() => pending);
        Assert.Equal(RpcCode.Unavailable, closed.Code);
    }

    internal static async Task<(TtrpcFrame Frame, byte[] Data)> ReadFrameAsync(Stream stream)
    {
        var header = new byte[TtrpcFrame.HeaderLength];
        await stream.ReadExactlyAsync(header);
        var frame = TtrpcFrame.Read(header);
        var data = new byte[frame.Length];
        await stream.ReadExactlyAsync(data);
        return (frame, data);
    }

    internal static async Task WriteFrameAsync(Stream stream, TtrpcFrame frame, IMessage message)
    {
        var data = message.ToByteArray();
        var header = new byte[TtrpcFrame.HeaderLength];
        (frame with { Length = (uint)data.Length }).Write(header);
        await stream.WriteAsync(header);
        await stream.WriteAsync(data);
    }
}
