using System.Buffers.Binary;
using System.Collections.Concurrent;
using Berth.E2E.Tests.Otlp;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// An OTLP trace collector on 127.0.0.1 for berthd to export to: OTLP/HTTP (POST /v1/traces, binary protobuf) on one
/// port and OTLP/gRPC (TraceService/Export over h2c) on another. It keeps every span it is sent.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private const string GrpcExportPath = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();
    private int _requests;

    private OtlpReceiver(WebApplication app) => _app = app;

    /// <summary>Base URL of OTLP/HTTP, as a collector's endpoint is configured (the exporter adds /v1/traces).</summary>
    public Uri HttpEndpoint { get; private set; } = null!;

    /// <summary>URL of OTLP/gRPC.</summary>
    public Uri GrpcEndpoint { get; private set; } = null!;

    /// <summary>Export requests received, over either protocol.</summary>
    public int Requests => Volatile.Read(ref _requests);

    public IReadOnlyList<ReceivedSpan> Spans => [.. _spans];

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1);
            k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2);
        });
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/traces", async context =>
        {
            receiver.Take(ExportTraceServiceRequest.Parser.ParseFrom(await ReadBodyAsync(context.Request)));
            context.Response.ContentType = "application/x-protobuf";
        });
        app.MapPost(GrpcExportPath, async context =>
        {
            // One gRPC message: a compressed flag, a big-endian length, the message; answered with an empty response.
            var body = await ReadBodyAsync(context.Request);
            var length = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(1, 4));
            receiver.Take(ExportTraceServiceRequest.Parser.ParseFrom(body, 5, length));
            context.Response.ContentType = "application/grpc";
            context.Response.AppendTrailer("grpc-status", "0");
            await context.Response.Body.WriteAsync(new byte[5]);
        });
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)).ToList();
        // Kestrel lists the listeners in the order they were added.
        receiver.HttpEndpoint = addresses[0];
        receiver.GrpcEndpoint = addresses[1];
        return receiver;
    }

    /// <summary>Waits until the spans received satisfy <paramref name="done"/> (the exporter sends in batches, every few seconds).</summary>
    public async Task<IReadOnlyList<ReceivedSpan>> WaitForAsync(Func<IReadOnlyList<ReceivedSpan>, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var spans = Spans;
            if (done(spans)) return spans;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the OTLP receiver did not get the expected spans within {timeout}; it got {spans.Count}: " +
                                           string.Join(", ", spans.Select(s => s.Name).Distinct()));
            await Task.Delay(100);
        }
    }

    public void Clear() => _spans.Clear();

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    private void Take(ExportTraceServiceRequest request)
    {
        Interlocked.Increment(ref _requests);
        foreach (var resource in request.ResourceSpans)
        {
            var service = resource.Resource?.Attributes.FirstOrDefault(a => a.Key == "service.name")?.Value.StringValue ?? "";
            foreach (var scope in resource.ScopeSpans)
            foreach (var span in scope.Spans)
            {
                _spans.Enqueue(new ReceivedSpan(
                    Convert.ToHexStringLower(span.TraceId.Span), Convert.ToHexStringLower(span.SpanId.Span), Convert.ToHexStringLower(span.ParentSpanId.Span),
                    span.Name, span.Kind, scope.Scope?.Name ?? "", service,
                    DateTime.UnixEpoch.AddTicks((long)(span.StartTimeUnixNano / 100)), DateTime.UnixEpoch.AddTicks((long)(span.EndTimeUnixNano / 100)),
                    span.Attributes.ToDictionary(a => a.Key, a => a.Value.ValueCase switch
                    {
                        AnyValue.ValueOneofCase.StringValue => a.Value.StringValue,
                        AnyValue.ValueOneofCase.IntValue => a.Value.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        AnyValue.ValueOneofCase.BoolValue => a.Value.BoolValue ? "true" : "false",
                        _ => a.Value.ToString(),
                    }),
                    span.Status?.Code ?? Status.Types.StatusCode.Unset, span.Status?.Message ?? ""));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One span as the collector got it; IDs in lower-case hex, an empty parent for a root.</summary>
public sealed record ReceivedSpan(
    string TraceId, string SpanId, string ParentSpanId, string Name, Span.Types.SpanKind Kind, string Scope, string Service,
    DateTime Start, DateTime End, IReadOnlyDictionary<string, string> Attributes, Status.Types.StatusCode StatusCode, string StatusMessage)
{
    public TimeSpan Duration => End - Start;
}
