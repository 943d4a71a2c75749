using System.Diagnostics;
using Grpc.Core;

namespace Berth.CriServer.Observability;

/// <summary>
/// The server span of each CRI call, named as gRPC's OpenTelemetry instrumentation names them
/// ("runtime.v1.RuntimeService/RunPodSandbox"), a child of the caller's span when the call carries W3C trace context
/// (kubelet's does when its tracing is on). The components' phase spans nest under it.
/// </summary>
internal static class RpcTracing
{
    private static readonly ActivitySource Source = new("Berth.CriServer");

    public static Activity? Start(ServerCallContext context)
    {
        if (!Source.HasListeners()) return null;
        var headers = context.RequestHeaders;
        // ASP.NET Core's own request activity is never exported, so it must not become the parent.
        Activity.Current = null;
        _ = ActivityContext.TryParse(headers.GetValue("traceparent"), headers.GetValue("tracestate"), isRemote: true, out var parent);
        var name = context.Method.TrimStart('/');
        var span = Source.StartActivity(name, ActivityKind.Server, parent);
        if (span is { IsAllDataRequested: true })
        {
            var slash = name.IndexOf('/', StringComparison.Ordinal);
            span.SetTag("rpc.system", "grpc");
            span.SetTag("rpc.service", name[..slash]);
            span.SetTag("rpc.method", name[(slash + 1)..]);
        }
        return span;
    }

    public static void Stop(Activity? span, StatusCode code, string? detail)
    {
        if (span is null) return;
        span.SetTag("rpc.grpc.status_code", (int)code);
        if (code != StatusCode.OK) span.SetStatus(ActivityStatusCode.Error, $"{code}: {detail}");
        span.Dispose();
    }
}
