using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<ContainerStatusResponse> ContainerStatus(ContainerStatusRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        var record = _containers.Find(request.ContainerId);
        if (record is null || record.State == Runtime.Containers.ContainerState.Creating)
            throw new RpcException(new Status(StatusCode.NotFound, $"container_id: container {request.ContainerId} not found"));
        var response = new ContainerStatusResponse { Status = ContainerMapper.ToStatus(record) };
        if (request.Verbose) response.Info.Add("info", ContainerInfo.Verbose(record));
        return Task.FromResult(response);
    }
}
