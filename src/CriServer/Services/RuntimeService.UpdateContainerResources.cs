using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<UpdateContainerResourcesResponse> UpdateContainerResources(UpdateContainerResourcesRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        if (request.Linux is null) throw InvalidArgument("linux is required");
        await _containers.UpdateResourcesAsync(_containers.ResolveId(request.ContainerId), ContainerMapper.Resources(request.Linux), context.CancellationToken);
        return new UpdateContainerResourcesResponse();
    }
}
