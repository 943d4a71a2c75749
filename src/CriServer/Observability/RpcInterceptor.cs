using System.Diagnostics;
using Grpc.Core;
using Berth.ImageStore;
using Berth.Sandbox;
using Grpc.Core.Interceptors;

namespace Berth.CriServer.Observability;

/// <summary>
/// Wraps every CRI RPC: logs it, records its metrics and its span, and turns whatever escapes a handler
/// into a precise gRPC status, so that no RPC crashes the daemon or answers without a message.
/// </summary>
internal sealed partial class RpcInterceptor(ILogger<RpcInterceptor> logger, RpcMetrics metrics) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var started = Stopwatch.GetTimestamp();
        var span = RpcTracing.Start(context);
        try
        {
            var response = await continuation(request, context);
            Completed(context.Method, StatusCode.OK, started, null, span);
            return response;
        }
        catch (Exception e)
        {
            var failure = ToRpcException(e, context);
            Completed(context.Method, failure.StatusCode, started, failure, span);
            throw failure;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var started = Stopwatch.GetTimestamp();
        var span = RpcTracing.Start(context);
        try
        {
            await continuation(request, responseStream, context);
            Completed(context.Method, StatusCode.OK, started, null, span);
        }
        catch (Exception e)
        {
            var failure = ToRpcException(e, context);
            Completed(context.Method, failure.StatusCode, started, failure, span);
            throw failure;
        }
    }

    private void Completed(string method, StatusCode code, long started, RpcException? failure, Activity? span)
    {
        var elapsed = Stopwatch.GetElapsedTime(started);
        RpcTracing.Stop(span, code, failure?.Status.Detail);
        metrics.Observe(method, code, elapsed);
        if (failure is null)
            LogServed(method, elapsed.TotalMilliseconds);
        else
            LogFailed(method, code, elapsed.TotalMilliseconds, failure.Status.Detail);
    }

    /// <summary>
    /// Status details travel in HTTP/2 trailers, which clients cap (Go's and .NET's at 64 KiB or less): a message that
    /// echoes a 100 KB field would reach the caller as a transport error instead. Long details are cut in the middle.
    /// </summary>
    private const int MaxDetail = 2048;

    private RpcException ToRpcException(Exception e, ServerCallContext context) => Bounded(Map(e, context));

    private static RpcException Bounded(RpcException rpc) =>
        rpc.Status.Detail.Length <= MaxDetail
            ? rpc
            : new RpcException(new Status(rpc.StatusCode, $"{rpc.Status.Detail[..(MaxDetail / 2)]} … {rpc.Status.Detail[^(MaxDetail / 2)..]}"), rpc.Trailers);

    private RpcException Map(Exception e, ServerCallContext context) => e switch
    {
        RpcException rpc => rpc,
        _ when StatusMapper.StorageFull(e) is { } full =>
            new RpcException(new Status(StatusCode.ResourceExhausted, $"{context.Method.TrimStart('/')}: the node's disk is full: {full.Message}")),
        ImageStoreException image => new RpcException(new Status(StatusMapper.CodeOf(image), image.Message)),
        SandboxException sandbox => new RpcException(new Status(StatusMapper.CodeOf(sandbox), sandbox.Message)),
        Berth.Runtime.Containers.ContainerException container => new RpcException(new Status(StatusMapper.CodeOf(container), container.Message)),
        OperationCanceledException when context.CancellationToken.IsCancellationRequested =>
            new RpcException(new Status(StatusCode.Cancelled, "the client cancelled the call or its deadline passed")),
        _ => Internal(e, context),
    };

    private RpcException Internal(Exception e, ServerCallContext context)
    {
        LogUnexpected(context.Method, e);
        return new RpcException(new Status(StatusCode.Internal, $"{context.Method.TrimStart('/')}: {e.Message}", e));
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Method} OK in {ElapsedMs:F2} ms")]
    private partial void LogServed(string method, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Method} {Code} in {ElapsedMs:F2} ms: {Detail}")]
    private partial void LogFailed(string method, StatusCode code, double elapsedMs, string detail);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Method} threw an unexpected exception")]
    private partial void LogUnexpected(string method, Exception exception);
}
