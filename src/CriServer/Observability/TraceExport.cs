using Berth.CriServer.Configuration;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Berth.CriServer.Observability;

/// <summary>
/// Sends Berth's spans to an OTLP collector when <c>[tracing] endpoint</c> is set. Off, nothing listens to Berth's
/// sources and no exporter exists, so spans are never made.
/// </summary>
internal static class TraceExport
{
    /// <summary>Every component's source: Berth.CriServer, Berth.Sandbox, Berth.Cni, Berth.Runtime.</summary>
    private const string Sources = "Berth.*";

    /// <summary>The running exporter, whose disposal sends what is left; null when tracing is off.</summary>
    public static TracerProvider? Start(TracingConfig config)
    {
        if (config.Endpoint is not { } endpoint) return null;
        return Sdk.CreateTracerProviderBuilder()
            .AddSource(Sources)
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(config.ServiceName, serviceVersion: BuildInfo.Version))
            .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(config.SamplingRatio)))
            .AddOtlpExporter(o =>
            {
                o.Protocol = config.Protocol == OtlpProtocol.Grpc ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
                o.Endpoint = TracesUri(endpoint, config.Protocol);
            })
            .Build();
    }

    /// <summary>
    /// OTLP/HTTP's signal path, as the OTEL_EXPORTER_OTLP_ENDPOINT convention adds it to a collector's base URL; an
    /// endpoint written with a path is taken as the full URL.
    /// </summary>
    internal static Uri TracesUri(Uri endpoint, OtlpProtocol protocol) =>
        protocol == OtlpProtocol.HttpProtobuf && endpoint.AbsolutePath == "/" ? new Uri(endpoint, "v1/traces") : endpoint;
}
