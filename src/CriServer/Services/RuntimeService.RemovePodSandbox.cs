using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    // Succeeds for an unknown ID, as StopPodSandbox does; a unique ID prefix names its pod.
    public override async Task<RemovePodSandboxResponse> RemovePodSandbox(RemovePodSandboxRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var id = _sandboxes.Find(request.PodSandboxId)?.Id ?? request.PodSandboxId;
        await _containers.RemovePodAsync(id, context.CancellationToken);
        await _sandboxes.RemoveAsync(id, context.CancellationToken);
        return new RemovePodSandboxResponse();
    }
}
