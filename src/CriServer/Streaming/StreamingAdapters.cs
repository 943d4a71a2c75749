using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Berth.Runtime.Containers;
using Berth.Sandbox;
using Berth.Streaming;

namespace Berth.CriServer.Streaming;

/// <summary>An exec of a validated ExecRequest, run when its client connects.</summary>
internal sealed class ExecCommand(ContainerManager containers, string containerId, IReadOnlyList<string> command, RemoteCommandOptions options) : IRemoteCommand
{
    public RemoteCommandOptions Options => options;

    public async Task<int?> RunAsync(RemoteCommandStreams streams, CancellationToken cancellationToken) =>
        await containers.ExecAsync(containerId, command, streams.ToRuntime(options.Tty, cancellationToken), cancellationToken);
}

/// <summary>An attach of a validated AttachRequest.</summary>
internal sealed class AttachCommand(ContainerManager containers, string containerId, RemoteCommandOptions options) : IRemoteCommand
{
    public RemoteCommandOptions Options => options;

    public async Task<int?> RunAsync(RemoteCommandStreams streams, CancellationToken cancellationToken)
    {
        await containers.AttachAsync(containerId, streams.ToRuntime(options.Tty, cancellationToken), cancellationToken);
        return null;
    }
}

/// <summary>The ports of one pod sandbox.</summary>
internal sealed class PodPortForward(SandboxManager sandboxes, string sandboxId, IReadOnlyList<int> ports) : IPortForward
{
    public IReadOnlyList<int> Ports => ports;

    public string Description => $"pod sandbox {sandboxId}";

    public Task<Socket> ConnectAsync(int port, CancellationToken cancellationToken) => sandboxes.ConnectAsync(sandboxId, port, cancellationToken);
}

internal static class RemoteCommandStreamsExtensions
{
    public static InteractiveStreams ToRuntime(this RemoteCommandStreams streams, bool tty, CancellationToken cancellationToken) =>
        new(streams.Stdin, streams.Stdout, streams.Stderr, tty, streams.Resize is { } resize ? Sizes(resize, cancellationToken) : null);

    private static async IAsyncEnumerable<(ushort Columns, ushort Rows)> Sizes(ChannelReader<TerminalSize> sizes, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var size in sizes.ReadAllAsync(cancellationToken)) yield return (size.Width, size.Height);
    }
}
