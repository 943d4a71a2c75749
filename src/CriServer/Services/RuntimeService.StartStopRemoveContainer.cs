using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<StartContainerResponse> StartContainer(StartContainerRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        await _containers.StartAsync(_containers.ResolveId(request.ContainerId), context.CancellationToken);
        return new StartContainerResponse();
    }

    public override async Task<StopContainerResponse> StopContainer(StopContainerRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        if (request.Timeout < 0) throw InvalidArgument($"timeout: {request.Timeout} is negative");
        await _containers.StopAsync(_containers.ResolveId(request.ContainerId), TimeSpan.FromSeconds(request.Timeout), context.CancellationToken);
        return new StopContainerResponse();
    }

    // Succeeds for an unknown ID: kubelet retries removals after crashes and expects idempotence.
    public override async Task<RemoveContainerResponse> RemoveContainer(RemoveContainerRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        await _containers.RemoveAsync(_containers.ResolveId(request.ContainerId), context.CancellationToken);
        return new RemoveContainerResponse();
    }
}
