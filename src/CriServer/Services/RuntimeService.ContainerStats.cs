using Berth.Cri.V1;
using Berth.CriServer.Stats;
using Grpc.Core;
using RuntimeState = Berth.Runtime.Containers.ContainerState;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<ContainerStatsResponse> ContainerStats(ContainerStatsRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        var record = _containers.Find(request.ContainerId);
        if (record is null || record.State == RuntimeState.Creating)
            throw new RpcException(new Status(StatusCode.NotFound, $"container_id: container {request.ContainerId} not found"));
        return Task.FromResult(new ContainerStatsResponse { Stats = StatsMapper.ToCri(_stats.Container(record), _containerData) });
    }
}
