using System.Net.Sockets;
using Grpc.Net.Client;
using Berth.Cri.V1;

namespace Berth.Cli;

/// <summary>
/// The CRI socket, found as crictl finds it: <c>-r/--runtime-endpoint</c>, then <c>CONTAINER_RUNTIME_ENDPOINT</c>,
/// then berthd's default.
/// </summary>
internal sealed class CriConnection : IDisposable
{
    public const string DefaultEndpoint = "unix:///run/berth/berth.sock";
    public const string EndpointVariable = "CONTAINER_RUNTIME_ENDPOINT";

    private readonly GrpcChannel _channel;

    private CriConnection(string socketPath, TimeSpan timeout)
    {
        SocketPath = socketPath;
        Timeout = timeout;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    var why = File.Exists(socketPath) ? e.Message : "no such socket";
                    throw new CliException($"can't reach the runtime at unix://{socketPath}: {why} (is berthd running? set -r or {EndpointVariable})");
                }
            },
        };
        // The address is only for the HTTP/2 :authority; the socket is chosen by the callback above.
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 64 * 1024 * 1024,
        });
        Runtime = new RuntimeService.RuntimeServiceClient(_channel);
        Images = new ImageService.ImageServiceClient(_channel);
    }

    public string SocketPath { get; }

    /// <summary>The deadline of each unary call.</summary>
    public TimeSpan Timeout { get; }

    public RuntimeService.RuntimeServiceClient Runtime { get; }

    public ImageService.ImageServiceClient Images { get; }

    public DateTime Deadline => DateTime.UtcNow + Timeout;

    public static CriConnection Open(string? endpoint, TimeSpan timeout)
    {
        endpoint ??= Environment.GetEnvironmentVariable(EndpointVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : DefaultEndpoint;
        return new CriConnection(SocketPathOf(endpoint), timeout);
    }

    /// <summary><c>unix:///path</c>, <c>unix:path</c> or a bare absolute path; no TCP, as berthd never listens on one.</summary>
    internal static string SocketPathOf(string endpoint)
    {
        if (endpoint.StartsWith("unix://", StringComparison.Ordinal)) endpoint = endpoint["unix://".Length..];
        else if (endpoint.StartsWith("unix:", StringComparison.Ordinal)) endpoint = endpoint["unix:".Length..];
        else if (endpoint.Contains("://", StringComparison.Ordinal))
            throw new CliException($"runtime endpoint '{endpoint}': only unix sockets are supported (unix:///run/berth/berth.sock)");
        if (!endpoint.StartsWith('/')) throw new CliException($"runtime endpoint '{endpoint}': the socket path must be absolute");
        return endpoint;
    }

    public void Dispose() => _channel.Dispose();
}
