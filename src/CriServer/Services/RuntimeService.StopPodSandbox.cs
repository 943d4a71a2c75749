using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    // Succeeds for an unknown ID: kubelet retries stops after crashes and expects idempotence. A unique ID
    // prefix names its pod, as in PodSandboxStatus (crictl passes what the operator typed).
    public override async Task<StopPodSandboxResponse> StopPodSandbox(StopPodSandboxRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var id = _sandboxes.Find(request.PodSandboxId)?.Id ?? request.PodSandboxId;
        // The containers first, at once, as containerd does: kubelet has given them their grace period already.
        await _containers.StopPodAsync(id, context.CancellationToken);
        await _sandboxes.StopAsync(id, context.CancellationToken);
        return new StopPodSandboxResponse();
    }
}
