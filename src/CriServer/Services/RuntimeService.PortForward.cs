using Berth.Cri.V1;
using Berth.CriServer.Streaming;
using Berth.Streaming.Server;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<PortForwardResponse> PortForward(PortForwardRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        foreach (var port in request.Port)
            if (port is < 1 or > 65535) throw InvalidArgument($"port: {port} is out of range 1-65535");
        var sandbox = _sandboxes.Find(request.PodSandboxId)
                      ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod_sandbox_id: pod sandbox {request.PodSandboxId} not found"));
        if (sandbox.State != Berth.Sandbox.SandboxState.Ready)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"pod_sandbox_id: pod sandbox {sandbox.Id} is not ready"));
        var url = await IssueAsync(new PortForwardSession(new PodPortForward(_sandboxes, sandbox.Id, [.. request.Port])), context.CancellationToken);
        return new PortForwardResponse { Url = url };
    }
}
