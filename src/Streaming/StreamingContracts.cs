using System.Net.Sockets;
using System.Threading.Channels;

namespace Berth.Streaming;

/// <summary>Which standard streams a remote command (exec or attach) uses, and whether it is a terminal.</summary>
public sealed record RemoteCommandOptions(bool Stdin, bool Stdout, bool Stderr, bool Tty);

/// <summary>A terminal size as Kubernetes' resize stream sends it.</summary>
public readonly record struct TerminalSize(ushort Width, ushort Height);

/// <summary>The client's side of a remote command, whatever protocol carried it. Absent streams are null.</summary>
public sealed class RemoteCommandStreams
{
    public Stream? Stdin { get; init; }
    public Stream? Stdout { get; init; }
    public Stream? Stderr { get; init; }
    public ChannelReader<TerminalSize>? Resize { get; init; }
}

/// <summary>An exec or attach that the runtime has already validated, waiting for its client.</summary>
public interface IRemoteCommand
{
    RemoteCommandOptions Options { get; }

    /// <summary>
    /// Runs until the command (or the attached container) ends. Returns the exit code of an exec, or null for an
    /// attach. Cancellation means the client went away. Failures throw; their message reaches the client.
    /// </summary>
    Task<int?> RunAsync(RemoteCommandStreams streams, CancellationToken cancellationToken);
}

/// <summary>A pod's ports, reachable from the streaming server.</summary>
public interface IPortForward
{
    /// <summary>The ports the request named (used by WebSocket clients, which open one channel pair per port).</summary>
    IReadOnlyList<int> Ports { get; }

    /// <summary>Connects to the port on the pod's loopback.</summary>
    Task<Socket> ConnectAsync(int port, CancellationToken cancellationToken);

    /// <summary>Names the pod in error messages.</summary>
    string Description { get; }
}
