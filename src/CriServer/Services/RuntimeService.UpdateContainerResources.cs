using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<UpdateContainerResourcesResponse> UpdateContainerResources(UpdateContainerResourcesRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        if (request.Linux is null) throw InvalidArgument("linux is required");
        var id = _containers.ResolveId(request.ContainerId);
        var resources = await _nri.UpdateContainerAsync(id, ContainerMapper.Resources(request.Linux), context.CancellationToken);
        await _containers.UpdateResourcesAsync(id, resources, context.CancellationToken);
        await _nri.PostUpdateContainerAsync(id, context.CancellationToken);
        return new UpdateContainerResourcesResponse();
    }
}
