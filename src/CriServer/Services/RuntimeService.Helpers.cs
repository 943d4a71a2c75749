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

    private static RpcException InvalidArgument(string message) => new(new Status(StatusCode.InvalidArgument, message));

    /// <summary>No NUL, no name over NAME_MAX, nothing over PATH_MAX: what open(2) can be given.</summary>
    private static bool IsPathTheKernelTakes(string path) =>
        path.Length <= 4096 && !path.Contains('\0', StringComparison.Ordinal)
        && path.Split('/').All(name => System.Text.Encoding.UTF8.GetByteCount(name) <= 255);
}
