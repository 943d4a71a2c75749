using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    // Succeeds for an unknown ID: kubelet retries removals after crashes and expects idempotence.
    public override async Task<RemoveContainerResponse> RemoveContainer(RemoveContainerRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        var id = _containers.ResolveId(request.ContainerId);
        var removed = _nri.Capture(id);
        await _containers.RemoveAsync(id, context.CancellationToken);
        await _nri.RemoveContainerAsync(removed, context.CancellationToken);
        return new RemoveContainerResponse();
    }
}
