using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    // Succeeds for an unknown ID, as StopPodSandbox does; a unique ID prefix names its pod.
    public override async Task<RemovePodSandboxResponse> RemovePodSandbox(RemovePodSandboxRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var sandbox = _sandboxes.Find(request.PodSandboxId);
        var id = sandbox?.Id ?? request.PodSandboxId;
        List<(Berth.Nri.Api.PodSandbox, Berth.Nri.Api.Container)?> removed = _nri.Active ? [.. _containers.List().Where(c => c.PodId == id).Select(c => _nri.Capture(c.Id))] : [];
        await _containers.RemovePodAsync(id, context.CancellationToken);
        foreach (var container in removed) await _nri.RemoveContainerAsync(container, context.CancellationToken);
        await _sandboxes.RemoveAsync(id, context.CancellationToken);
        if (sandbox is not null) await _nri.RemovePodSandboxAsync(sandbox, context.CancellationToken);
        return new RemovePodSandboxResponse();
    }
}
