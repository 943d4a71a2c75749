using System.Collections.Concurrent;
using Berth.Nri.Ttrpc.Wire;
using Google.Protobuf;

namespace Berth.Nri.Transport;

/// <summary>
/// ttrpc over one byte stream (containerd/ttrpc PROTOCOL.md), unary calls only, as NRI uses it. The side that calls
/// takes odd stream IDs; the side that serves answers each Request with one Response on the request's stream ID.
/// A channel may do both, though NRI gives each direction its own multiplexed connection.
/// </summary>
public sealed class TtrpcChannel : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly TtrpcServices? _services;
    private readonly ConcurrentDictionary<uint, TaskCompletionSource<Response>> _pending = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private uint _nextStreamId = 1;
    private Task? _reader;

    public TtrpcChannel(Stream stream, TtrpcServices? services = null)
    {
        _stream = stream;
        _services = services;
    }

    /// <summary>Completes when the stream ends or breaks the protocol; the exception says how.</summary>
    public Task Completion => _reader ?? Task.CompletedTask;

    public void Start() => _reader ??= Task.Run(ReadLoopAsync);

    /// <summary>Calls <paramref name="service"/>.<paramref name="method"/>; a non-OK answer or a broken connection throws <see cref="TtrpcException"/>.</summary>
    public async Task<TResponse> CallAsync<TResponse>(
        string service, string method, IMessage request, MessageParser<TResponse> parser, TimeSpan timeout, CancellationToken cancellationToken)
        where TResponse : IMessage<TResponse>
    {
        var streamId = Interlocked.Add(ref _nextStreamId, 2) - 2;
        var answer = new TaskCompletionSource<Response>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[streamId] = answer;
        try
        {
            if (_closed.IsCancellationRequested || _reader is { IsCompleted: true })
                throw new TtrpcException(RpcCode.Unavailable, "ttrpc: the connection is closed");
            var envelope = new Request
            {
                Service = service, Method = method, Payload = request.ToByteString(), TimeoutNano = (long)timeout.TotalNanoseconds,
            };
            await SendAsync(new TtrpcFrame(0, streamId, TtrpcMessageType.Request, 0), envelope, cancellationToken);
            Response response;
            try
            {
                response = await answer.Task.WaitAsync(timeout, cancellationToken);
            }
            catch (TimeoutException)
            {
                throw new TtrpcException(RpcCode.DeadlineExceeded, $"ttrpc: {service}/{method} got no answer within {timeout.TotalSeconds:0.###} s");
            }
            if (response.Status is { Code: not 0 } status) throw new TtrpcException((RpcCode)status.Code, status.Message);
            try
            {
                return parser.ParseFrom(response.Payload);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new TtrpcException(RpcCode.DataLoss, $"ttrpc: {service}/{method} answered with a payload that is no {typeof(TResponse).Name}: {e.Message}", e);
            }
        }
        finally
        {
            _pending.TryRemove(streamId, out _);
        }
    }

    private async Task SendAsync(TtrpcFrame frame, IMessage message, CancellationToken cancellationToken)
    {
        var size = message.CalculateSize();
        if (size > TtrpcFrame.MaxDataLength)
            throw new TtrpcException(RpcCode.ResourceExhausted, $"ttrpc: a message of {size} bytes is over the {TtrpcFrame.MaxDataLength} a frame carries");
        var buffer = new byte[TtrpcFrame.HeaderLength + size];
        (frame with { Length = (uint)size }).Write(buffer);
        message.WriteTo(buffer.AsSpan(TtrpcFrame.HeaderLength));
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            await _stream.WriteAsync(buffer, cancellationToken);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            throw new TtrpcException(RpcCode.Unavailable, $"ttrpc: the connection is closed: {e.Message}", e);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        var header = new byte[TtrpcFrame.HeaderLength];
        Exception? error = null;
        try
        {
            while (await ReadHeaderAsync(header))
            {
                var frame = TtrpcFrame.Read(header);
                if (frame.Length > TtrpcFrame.MaxDataLength)
                {
                    await DiscardAsync(frame.Length);
                    var refusal = $"ttrpc: message length {frame.Length} exceeds the maximum message size of {TtrpcFrame.MaxDataLength}";
                    if (frame.Type == TtrpcMessageType.Request) Answer(frame.StreamId, RpcCode.ResourceExhausted, refusal);
                    else Complete(frame.StreamId, new Response { Status = new Status { Code = (int)RpcCode.ResourceExhausted, Message = refusal } });
                    continue;
                }
                var data = new byte[frame.Length];
                await _stream.ReadExactlyAsync(data, _closed.Token);
                switch (frame.Type)
                {
                    case TtrpcMessageType.Request:
                        _ = Task.Run(() => ServeAsync(frame, data));
                        break;
                    case TtrpcMessageType.Response:
                        Complete(frame.StreamId, Response.Parser.ParseFrom(data));
                        break;
                    default:
                        // Unary only: data on a stream is something NRI never sends.
                        throw new InvalidDataException($"ttrpc: a {frame.Type} frame on stream {frame.StreamId}, which a unary peer never sends");
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or EndOfStreamException or InvalidProtocolBufferException
                                       or ObjectDisposedException or OperationCanceledException)
        {
            error = e is OperationCanceledException or ObjectDisposedException ? null : e;
        }
        var closed = new TtrpcException(RpcCode.Unavailable, error is null ? "ttrpc: the connection is closed" : $"ttrpc: the connection broke: {error.Message}", error);
        foreach (var pending in _pending.Values) pending.TrySetException(closed);
        if (error is not null) throw closed;
    }

    private async Task<bool> ReadHeaderAsync(byte[] header)
    {
        var read = 0;
        while (read < header.Length)
        {
            var n = await _stream.ReadAsync(header.AsMemory(read), _closed.Token);
            if (n == 0)
            {
                if (read == 0) return false;
                throw new EndOfStreamException("ttrpc: the connection ended inside a frame header");
            }
            read += n;
        }
        return true;
    }

    private async Task DiscardAsync(uint length)
    {
        var buffer = new byte[64 * 1024];
        while (length > 0)
        {
            var n = (int)Math.Min(length, (uint)buffer.Length);
            await _stream.ReadExactlyAsync(buffer.AsMemory(0, n), _closed.Token);
            length -= (uint)n;
        }
    }

    private void Complete(uint streamId, Response response)
    {
        // An answer to a call that has already given up (timed out) finds nobody waiting, and is dropped.
        if (_pending.TryGetValue(streamId, out var pending)) pending.TrySetResult(response);
    }

    private void Answer(uint streamId, RpcCode code, string message) =>
        _ = SendQuietlyAsync(streamId, new Response { Status = new Status { Code = (int)code, Message = message } });

    private async Task ServeAsync(TtrpcFrame frame, byte[] data)
    {
        Response response;
        try
        {
            var request = Request.Parser.ParseFrom(data);
            if (_services is null || !_services.TryGet(request.Service, request.Method, out var handler))
            {
                var missing = _services?.HasService(request.Service) == true ? $"method {request.Method}" : $"service {request.Service}";
                response = new Response { Status = new Status { Code = (int)RpcCode.Unimplemented, Message = missing } };
            }
            else
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
                if (request.TimeoutNano > 0) deadline.CancelAfter(TimeSpan.FromTicks(request.TimeoutNano / 100));
                var result = await handler(request.Payload, deadline.Token);
                response = new Response { Payload = result.ToByteString() };
            }
        }
        catch (TtrpcException e)
        {
            response = new Response { Status = new Status { Code = (int)e.Code, Message = e.Message } };
        }
        catch (InvalidProtocolBufferException e)
        {
            response = new Response { Status = new Status { Code = (int)RpcCode.InvalidArgument, Message = $"ttrpc: the request payload does not parse: {e.Message}" } };
        }
        catch (OperationCanceledException)
        {
            response = new Response { Status = new Status { Code = (int)RpcCode.DeadlineExceeded, Message = "ttrpc: the call's deadline passed" } };
        }
#pragma warning disable CA1031 // A handler's failure is the caller's answer, not this server's end.
        catch (Exception e)
#pragma warning restore CA1031
        {
            response = new Response { Status = new Status { Code = (int)RpcCode.Unknown, Message = e.Message } };
        }
        await SendQuietlyAsync(frame.StreamId, response);
    }

    private async Task SendQuietlyAsync(uint streamId, Response response)
    {
        try
        {
            await SendAsync(new TtrpcFrame(0, streamId, TtrpcMessageType.Response, 0), response, _closed.Token);
        }
        catch (Exception e) when (e is TtrpcException or OperationCanceledException)
        {
            // The connection went away; the reader reports that.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_closed.IsCancellationRequested) return;
        await _closed.CancelAsync();
        await _stream.DisposeAsync();
        if (_reader is not null)
        {
            try
            {
                await _reader;
            }
            catch (TtrpcException)
            {
                // Reported through Completion.
            }
        }
        foreach (var pending in _pending.Values) pending.TrySetException(new TtrpcException(RpcCode.Unavailable, "ttrpc: the connection is closed"));
    }
}
