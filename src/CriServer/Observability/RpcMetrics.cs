using Grpc.Core;
using Prometheus;

namespace Berth.CriServer.Observability;

/// <summary>Per-method CRI request counts and latencies for <c>/metrics</c>.</summary>
internal sealed class RpcMetrics
{
    private readonly Counter _requests;
    private readonly Histogram _duration;

    public RpcMetrics(CollectorRegistry registry)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        _requests = factory.CreateCounter(
            "berth_grpc_requests_total",
            "CRI RPCs served, by full method name and gRPC status code.",
            ["method", "code"]);
        _duration = factory.CreateHistogram(
            "berth_grpc_request_duration_seconds",
            "Time to serve a CRI RPC, by full method name.",
            new HistogramConfiguration
            {
                LabelNames = ["method"],
                // 250µs .. ~16s: Version answers in microseconds, a pull or a stop with a grace period takes seconds.
                Buckets = Histogram.ExponentialBuckets(0.00025, 2, 17),
            });
    }

    public void Observe(string method, StatusCode code, TimeSpan elapsed)
    {
        _requests.WithLabels(method, CodeName(code)).Inc();
        _duration.WithLabels(method).Observe(elapsed.TotalSeconds);
    }

    // Enum.ToString allocates; the set is fixed.
    private static string CodeName(StatusCode code) => code switch
    {
        StatusCode.OK => "OK",
        StatusCode.Cancelled => "Canceled",
        StatusCode.Unknown => "Unknown",
        StatusCode.InvalidArgument => "InvalidArgument",
        StatusCode.DeadlineExceeded => "DeadlineExceeded",
        StatusCode.NotFound => "NotFound",
        StatusCode.AlreadyExists => "AlreadyExists",
        StatusCode.PermissionDenied => "PermissionDenied",
        StatusCode.ResourceExhausted => "ResourceExhausted",
        StatusCode.FailedPrecondition => "FailedPrecondition",
        StatusCode.Aborted => "Aborted",
        StatusCode.OutOfRange => "OutOfRange",
        StatusCode.Unimplemented => "Unimplemented",
        StatusCode.Internal => "Internal",
        StatusCode.Unavailable => "Unavailable",
        StatusCode.DataLoss => "DataLoss",
        StatusCode.Unauthenticated => "Unauthenticated",
        _ => "Unknown",
    };
}
