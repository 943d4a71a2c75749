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
        var sandbox = _sandboxes.Find(request.PodSandboxId);
        var id = sandbox?.Id ?? request.PodSandboxId;
        // Only with NRI plugins to tell: listing every container is no cost StopPodSandbox should pay for nothing.
        List<string> running = _nri.Active
            ? [.. _containers.List().Where(c => c.PodId == id && c.State is Runtime.Containers.ContainerState.Created or Runtime.Containers.ContainerState.Running).Select(c => c.Id)]
            : [];
        // The containers first, at once, as containerd does: kubelet has given them their grace period already.
        await _containers.StopPodAsync(id, context.CancellationToken);
        foreach (var container in running) await _nri.StopContainerAsync(container, context.CancellationToken);
        await _sandboxes.StopAsync(id, context.CancellationToken);
        if (sandbox is { State: Berth.Sandbox.SandboxState.Ready } && _sandboxes.Get(id) is { } stopped) await _nri.StopPodSandboxAsync(stopped, context.CancellationToken);
        return new StopPodSandboxResponse();
    }
}
