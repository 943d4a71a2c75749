using Berth.Cri.V1;
using Berth.CriServer.Streaming;
using Berth.Streaming.Server;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<ExecResponse> Exec(ExecRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        if (request.Cmd.Count == 0) throw InvalidArgument("cmd is required");
        var options = StreamOptions(request.Stdin, request.Stdout, request.Stderr, request.Tty);
        var container = _containers.RequireRunning(_containers.ResolveId(request.ContainerId));
        var url = await IssueAsync(new RemoteCommandSession(StreamingSession.ExecKind, new ExecCommand(_containers, container.Id, [.. request.Cmd], options)), context.CancellationToken);
        return new ExecResponse { Url = url };
    }
}
