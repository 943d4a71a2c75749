using Berth.Cri.V1;
using Berth.CriServer.Stats;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<PodSandboxStatsResponse> PodSandboxStats(PodSandboxStatsRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var sandbox = _sandboxes.Find(request.PodSandboxId)
                      ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod_sandbox_id: pod sandbox {request.PodSandboxId} not found"));
        var sample = await _stats.PodAsync(sandbox, _containers.List().Where(c => c.PodId == sandbox.Id), context.CancellationToken);
        return new PodSandboxStatsResponse { Stats = StatsMapper.ToCri(sandbox, sample, _containerData) };
    }
}
