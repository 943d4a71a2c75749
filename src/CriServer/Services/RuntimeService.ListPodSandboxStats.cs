using System.Runtime.CompilerServices;
using Berth.Cri.V1;
using Berth.CriServer.Stats;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<ListPodSandboxStatsResponse> ListPodSandboxStats(ListPodSandboxStatsRequest request, ServerCallContext context)
    {
        var response = new ListPodSandboxStatsResponse();
        await foreach (var stats in SelectPodStatsAsync(request.Filter, context.CancellationToken)) response.Stats.Add(stats);
        return response;
    }

    public override Task StreamPodSandboxStats(StreamPodSandboxStatsRequest request, IServerStreamWriter<StreamPodSandboxStatsResponse> responseStream, ServerCallContext context) =>
        ListStreaming.SendAsync(SelectPodStatsAsync(request.Filter, context.CancellationToken), _config.Grpc.StreamChunkSize, chunk =>
        {
            var message = new StreamPodSandboxStatsResponse();

            message.PodSandboxStats.AddRange(chunk);
            return message;
        }, responseStream, context.CancellationToken);

    /// <summary>Ready pods only: a stopped pod has no network namespace and no running containers to report.</summary>
    private async IAsyncEnumerable<PodSandboxStats> SelectPodStatsAsync(PodSandboxStatsFilter? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var ready = new PodSandboxFilter { Id = filter?.Id ?? "", State = new PodSandboxStateValue { State = PodSandboxState.SandboxReady } };
        if (filter is not null) ready.LabelSelector.Add(filter.LabelSelector);
        var byPod = _stats.ContainersByPod();
        foreach (var sandbox in SelectSandboxes(ready))
            yield return StatsMapper.ToCri(sandbox, await _stats.PodAsync(sandbox, byPod[sandbox.Id], cancellationToken), _containerData);
    }
}
