using System.Runtime.CompilerServices;
using Berth.Cri.V1;
using Berth.CriServer.Stats;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<PodSandboxStatsResponse> PodSandboxStats(PodSandboxStatsRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var sandbox = FindSandbox(request.PodSandboxId)
                      ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod_sandbox_id: pod sandbox {request.PodSandboxId} not found"));
        var sample = await _stats.PodAsync(sandbox, context.CancellationToken);
        return new PodSandboxStatsResponse { Stats = StatsMapper.ToCri(sandbox, sample, _containerData) };
    }

    public override async Task<ListPodSandboxStatsResponse> ListPodSandboxStats(ListPodSandboxStatsRequest request, ServerCallContext context)
    {
        var response = new ListPodSandboxStatsResponse();
        await foreach (var stats in SelectPodStatsAsync(request.Filter, context.CancellationToken)) response.Stats.Add(stats);
        return response;
    }

    public override async Task StreamPodSandboxStats(StreamPodSandboxStatsRequest request, IServerStreamWriter<StreamPodSandboxStatsResponse> responseStream, ServerCallContext context)
    {
        var chunk = new StreamPodSandboxStatsResponse();
        await foreach (var stats in SelectPodStatsAsync(request.Filter, context.CancellationToken))
        {
            chunk.PodSandboxStats.Add(stats);
            if (chunk.PodSandboxStats.Count < _config.Grpc.StreamChunkSize) continue;
            await responseStream.WriteAsync(chunk, context.CancellationToken);
            chunk = new StreamPodSandboxStatsResponse();
        }
        if (chunk.PodSandboxStats.Count > 0) await responseStream.WriteAsync(chunk, context.CancellationToken);
    }

    /// <summary>Ready pods only: a stopped pod has no network namespace and no running containers to report.</summary>
    private async IAsyncEnumerable<PodSandboxStats> SelectPodStatsAsync(PodSandboxStatsFilter? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var sandbox in _sandboxes.List())
        {
            if (sandbox.State != Berth.Sandbox.SandboxState.Ready) continue;
            if (filter is not null)
            {
                if (filter.Id.Length > 0 && sandbox.Id != filter.Id) continue;
                if (filter.LabelSelector.Any(l => !sandbox.Labels.TryGetValue(l.Key, out var value) || value != l.Value)) continue;
            }
            yield return StatsMapper.ToCri(sandbox, await _stats.PodAsync(sandbox, cancellationToken), _containerData);
        }
    }
}
