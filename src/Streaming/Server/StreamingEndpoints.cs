using System.Globalization;
using Berth.Streaming.PortForward;
using Berth.Streaming.RemoteCommand;
using Berth.Streaming.Spdy;
using Berth.Streaming.WebSockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Berth.Streaming.Server;

/// <summary>
/// The HTTP side of streaming: <c>/exec/{token}</c>, <c>/attach/{token}</c> and <c>/portforward/{token}</c>, each
/// upgraded to SPDY/3.1 (what kubelet and crictl speak) or accepted as a WebSocket. Unknown, used or expired tokens
/// get 404, like a path that does not exist.
/// </summary>
public static partial class StreamingEndpoints
{
    public const string ProtocolVersionHeader = "X-Stream-Protocol-Version";
    public const string AcceptedProtocolVersionsHeader = "X-Accepted-Stream-Protocol-Versions";
    private const string Spdy31 = "SPDY/3.1";
    private static readonly bool[] DataAndErrorChannels = [true, false];

    /// <summary>Maps the streaming paths. <paramref name="servesHere"/> says whether a request arrived on the streaming listener.</summary>
    public static void MapStreaming(this IEndpointRouteBuilder endpoints, StreamingSessions sessions, StreamingOptions options,
        Func<HttpContext, bool> servesHere, ILogger logger)
    {
        foreach (var kind in new[] { StreamingSession.ExecKind, StreamingSession.AttachKind, StreamingSession.PortForwardKind })
        {
            endpoints.Map($"/{kind}/{{token}}", context =>
                servesHere(context) ? HandleAsync(context, kind, sessions, options, logger) : NotFound(context));
        }
    }

    private static Task NotFound(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return Task.CompletedTask;
    }

    private static async Task HandleAsync(HttpContext context, string kind, StreamingSessions sessions, StreamingOptions options, ILogger logger)
    {
        var token = (string)context.Request.RouteValues["token"]!;
        if (sessions.Take(kind, token) is not { } request)
        {
            await NotFound(context);
            return;
        }
        try
        {
            if (context.WebSockets.IsWebSocketRequest) await ServeWebSocketAsync(context, request, options);
            else await ServeSpdyAsync(context, request, options);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            LogSessionEnded(logger, kind, e.Message);
        }
    }

    private static async Task ServeSpdyAsync(HttpContext context, StreamingSession request, StreamingOptions options)
    {
        var headers = context.Request.Headers;
        if (!headers.Connection.ToString().Contains("upgrade", StringComparison.OrdinalIgnoreCase)
            || !headers.Upgrade.ToString().Contains(Spdy31, StringComparison.OrdinalIgnoreCase)
            || context.Features.Get<IHttpUpgradeFeature>() is not { IsUpgradableRequest: true } upgrade)
        {
            await Fail(context, StatusCodes.Status400BadRequest, $"unable to upgrade: the request must ask for Upgrade: {Spdy31} (or a WebSocket)");
            return;
        }
        string[] supported = request is PortForwardSession ? [SpdyPortForward.Protocol] : RemoteCommandProtocol.SpdyProtocols;
        var offered = headers[ProtocolVersionHeader].SelectMany(v => (v ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToArray();
        // A client that negotiates nothing is a 1.0-era client: it gets the oldest protocol.
        var protocol = offered.Length == 0 ? supported[^1] : offered.FirstOrDefault(supported.Contains);
        if (protocol is null)
        {
            foreach (var version in supported) context.Response.Headers.Append(AcceptedProtocolVersionsHeader, version);
            await Fail(context, StatusCodes.Status403Forbidden,
                $"unable to upgrade: unable to negotiate protocol: client supports [{string.Join(' ', offered)}], server accepts [{string.Join(' ', supported)}]");
            return;
        }
        if (offered.Length > 0) context.Response.Headers[ProtocolVersionHeader] = protocol;
        context.Response.Headers.Upgrade = Spdy31;
        context.Response.Headers.Connection = "Upgrade";
        var transport = await upgrade.UpgradeAsync();
        await using var connection = new SpdyConnection(transport, new SpdyConnectionOptions { IdleTimeout = options.IdleTimeout });
        _ = connection.RunAsync();
        if (request is RemoteCommandSession command)
            await SpdyRemoteCommand.ServeAsync(connection, protocol, command.Command, options.StreamCreationTimeout, context.RequestAborted);
        else if (request is PortForwardSession forward)
            await SpdyPortForward.ServeAsync(connection, forward.Target, options.StreamCreationTimeout, context.RequestAborted);
        await LingerAsync(connection.Closed);
    }

    private static async Task ServeWebSocketAsync(HttpContext context, StreamingSession request, StreamingOptions options)
    {
        var supported = request is PortForwardSession ? RemoteCommandProtocol.WebSocketPortForwardProtocols : RemoteCommandProtocol.WebSocketProtocols;
        var requested = context.WebSockets.WebSocketRequestedProtocols;
        var protocol = requested.Count == 0 ? "" : requested.FirstOrDefault(supported.Contains);
        if (protocol is null)
        {
            await Fail(context, StatusCodes.Status400BadRequest,
                $"requested protocol(s) are not supported: [{string.Join(' ', requested)}]; supports [{string.Join(' ', supported)}]");
            return;
        }

        IReadOnlyList<int> ports = [];
        bool[] readable;
        if (request is PortForwardSession forward)
        {
            ports = forward.Target.Ports.Count > 0 ? forward.Target.Ports : QueryPorts(context);
            if (ports.Count == 0)
            {
                await Fail(context, StatusCodes.Status400BadRequest, "query parameter \"port\" is required when the request named no ports");
                return;
            }
            readable = [.. ports.SelectMany(_ => DataAndErrorChannels)];
        }
        else
        {
            var commandOptions = ((RemoteCommandSession)request).Command.Options;
            readable = [commandOptions.Stdin, false, false, false, commandOptions.Tty];
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = protocol.Length == 0 ? null : protocol });
        await using var channels = new ChannelWebSocket(socket, readable, closeSignals: protocol == RemoteCommandProtocol.V5, base64: RemoteCommandProtocol.IsBase64(protocol));
        _ = channels.RunAsync();
        if (request is RemoteCommandSession command)
            await WebSocketRemoteCommand.ServeAsync(channels, protocol, command.Command, context.RequestAborted);
        else
            await WebSocketPortForward.ServeAsync(channels, new FixedPorts(((PortForwardSession)request).Target, ports), context.RequestAborted);
    }

    /// <summary>Gives the client a moment to close first, so our close cannot turn unread bytes into a reset.</summary>
    private static async Task LingerAsync(CancellationToken peerClosed)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(5), peerClosed);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static List<int> QueryPorts(HttpContext context)
    {
        var ports = new List<int>();
        foreach (var value in context.Request.Query["port"])
        foreach (var part in (value ?? "").Split(','))
            if (int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535)
                ports.Add(port);
        return ports;
    }

    private static async Task Fail(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(message + "\n");
    }

    private sealed class FixedPorts(IPortForward inner, IReadOnlyList<int> ports) : IPortForward
    {
        public IReadOnlyList<int> Ports => ports;
        public string Description => inner.Description;
        public Task<System.Net.Sockets.Socket> ConnectAsync(int port, CancellationToken cancellationToken) => inner.ConnectAsync(port, cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Kind} session ended: {Reason}")]
    private static partial void LogSessionEnded(ILogger logger, string kind, string reason);
}
