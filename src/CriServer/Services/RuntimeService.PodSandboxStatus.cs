using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<PodSandboxStatusResponse> PodSandboxStatus(PodSandboxStatusRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var record = _sandboxes.Find(request.PodSandboxId)
                     ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod sandbox {request.PodSandboxId} not found"));
        var response = new PodSandboxStatusResponse { Status = SandboxMapper.ToStatus(record) };
        if (request.Verbose) response.Info.Add("info", SandboxMapper.VerboseInfo(record));
        return Task.FromResult(response);
    }
}
