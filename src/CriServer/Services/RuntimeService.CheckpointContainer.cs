using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    /// <summary>
    /// KEP-2008's forensic checkpoint: the container is dumped with CRIU into the archive at <c>location</c> (kubelet's
    /// <c>/var/lib/kubelet/checkpoints/...tar</c>) and runs on. <c>timeout</c> (seconds; 0 for none) bounds CRIU, and the
    /// caller's deadline bounds the call.
    /// </summary>
    public override async Task<CheckpointContainerResponse> CheckpointContainer(CheckpointContainerRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        if (string.IsNullOrEmpty(request.Location)) throw InvalidArgument("location is required: the path of the checkpoint archive to write");
        if (request.Timeout < 0) throw InvalidArgument($"timeout: {request.Timeout} is negative");
        await _containers.CheckpointAsync(_containers.ResolveId(request.ContainerId), request.Location,
            request.Timeout > 0 ? TimeSpan.FromSeconds(Math.Min(request.Timeout, int.MaxValue)) : null, context.CancellationToken);
        return new CheckpointContainerResponse();
    }
}
