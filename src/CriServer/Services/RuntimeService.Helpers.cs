using Berth.Sandbox;
using Berth.Streaming;
using Berth.Streaming.Server;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    private static RemoteCommandOptions StreamOptions(bool stdin, bool stdout, bool stderr, bool tty)
    {
        if (!stdin && !stdout && !stderr) throw InvalidArgument("one of stdin, stdout or stderr must be set");
        if (tty && stderr) throw InvalidArgument("tty and stderr cannot both be true: a terminal has one output stream");
        return new RemoteCommandOptions(stdin, stdout, stderr, tty);
    }

    private async Task<string> IssueAsync(StreamingSession session, CancellationToken cancellationToken)
    {
        try
        {
            return await _streaming.IssueAsync(session, cancellationToken);
        }
        catch (StreamingCapacityException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message));
        }
    }

    /// <summary>By full ID or a unique prefix, as crictl abbreviates them.</summary>
    private SandboxRecord? FindSandbox(string id)
    {
        if (_sandboxes.Get(id) is { } exact) return exact;
        var matches = _sandboxes.List().Where(s => s.Id.StartsWith(id, StringComparison.Ordinal)).Take(2).ToList();
        return matches.Count == 1 ? matches[0] : null;
    }

    private static RpcException InvalidArgument(string message) => new(new Status(StatusCode.InvalidArgument, message));

    /// <summary>No NUL, no name over NAME_MAX, nothing over PATH_MAX: what open(2) can be given.</summary>
    private static bool IsPathTheKernelTakes(string path) =>
        path.Length <= 4096 && !path.Contains('\0', StringComparison.Ordinal)
        && path.Split('/').All(name => System.Text.Encoding.UTF8.GetByteCount(name) <= 255);
}
