using Berth.Cri.V1;
using Berth.CriServer.Stats;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<ListContainerStatsResponse> ListContainerStats(ListContainerStatsRequest request, ServerCallContext context)
    {
        var response = new ListContainerStatsResponse();
        response.Stats.AddRange(SelectContainerStats(request.Filter));
        return Task.FromResult(response);
    }

    public override Task StreamContainerStats(StreamContainerStatsRequest request, IServerStreamWriter<StreamContainerStatsResponse> responseStream, ServerCallContext context) =>
        ListStreaming.SendAsync(SelectContainerStats(request.Filter), _config.Grpc.StreamChunkSize, chunk =>
        {
            var message = new StreamContainerStatsResponse();

            message.ContainerStats.AddRange(chunk);
            return message;
        }, responseStream, context.CancellationToken);

    private IEnumerable<ContainerStats> SelectContainerStats(ContainerStatsFilter? filter)
    {
        var selection = new ContainerFilter { Id = filter?.Id ?? "", PodSandboxId = filter?.PodSandboxId ?? "" };
        if (filter is not null) selection.LabelSelector.Add(filter.LabelSelector);
        return SelectContainers(selection).Select(record => StatsMapper.ToCri(_stats.Container(record), _containerData));
    }
}
