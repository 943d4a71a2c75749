using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    // Both succeed for an unknown ID: kubelet retries them after crashes and expects idempotence.
    public override async Task<StopPodSandboxResponse> StopPodSandbox(StopPodSandboxRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        // The containers first, at once, as containerd does: kubelet has given them their grace period already.
        await _containers.StopPodAsync(request.PodSandboxId, context.CancellationToken);
        await _sandboxes.StopAsync(request.PodSandboxId, context.CancellationToken);
        return new StopPodSandboxResponse();
    }

    public override async Task<RemovePodSandboxResponse> RemovePodSandbox(RemovePodSandboxRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        await _containers.RemovePodAsync(request.PodSandboxId, context.CancellationToken);
        await _sandboxes.RemoveAsync(request.PodSandboxId, context.CancellationToken);
        return new RemovePodSandboxResponse();
    }
}
