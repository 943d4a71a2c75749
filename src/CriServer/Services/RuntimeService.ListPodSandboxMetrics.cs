using System.Runtime.CompilerServices;
using Berth.Cri.V1;
using Berth.CriServer.Stats;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<ListPodSandboxMetricsResponse> ListPodSandboxMetrics(ListPodSandboxMetricsRequest request, ServerCallContext context)
    {
        var response = new ListPodSandboxMetricsResponse();
        await foreach (var metrics in SelectPodMetricsAsync(context.CancellationToken)) response.PodMetrics.Add(metrics);
        return response;
    }

    public override Task StreamPodSandboxMetrics(StreamPodSandboxMetricsRequest request, IServerStreamWriter<StreamPodSandboxMetricsResponse> responseStream, ServerCallContext context) =>
        ListStreaming.SendAsync(SelectPodMetricsAsync(context.CancellationToken), _config.Grpc.StreamChunkSize, chunk =>
        {
            var message = new StreamPodSandboxMetricsResponse();

            message.PodSandboxMetrics.AddRange(chunk);
            return message;
        }, responseStream, context.CancellationToken);

    private async IAsyncEnumerable<PodSandboxMetrics> SelectPodMetricsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var ready = new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxReady } };
        var byPod = _stats.ContainersByPod();
        foreach (var sandbox in SelectSandboxes(ready))
            yield return PodMetrics.ToCri(sandbox, await _stats.PodAsync(sandbox, byPod[sandbox.Id], cancellationToken));
    }
}
