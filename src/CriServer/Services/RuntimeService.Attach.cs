using Berth.Cri.V1;
using Berth.CriServer.Streaming;
using Berth.Streaming.Server;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<AttachResponse> Attach(AttachRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        var options = StreamOptions(request.Stdin, request.Stdout, request.Stderr, request.Tty);
        var container = _containers.RequireRunning(_containers.ResolveId(request.ContainerId));
        if (request.Stdin && !container.Stdin)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"stdin: container {request.ContainerId} was not created with stdin open"));
        var url = await IssueAsync(new RemoteCommandSession(StreamingSession.AttachKind, new AttachCommand(_containers, container.Id, options)), context.CancellationToken);
        return new AttachResponse { Url = url };
    }
}
