using System.Runtime.CompilerServices;
using Berth.Cri.V1;
using Berth.CriServer.Stats;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<ListMetricDescriptorsResponse> ListMetricDescriptors(ListMetricDescriptorsRequest request, ServerCallContext context)
    {
        var response = new ListMetricDescriptorsResponse();
        response.Descriptors.AddRange(PodMetrics.Descriptors());
        return Task.FromResult(response);
    }

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

    /// <summary>
    /// kubelet sizes the pod's cgroup itself (cgroupfs driver) before it calls this; Berth keeps no pod-level
    /// resources of its own, so after checking the request there is nothing to apply.
    /// </summary>
    public override Task<UpdatePodSandboxResourcesResponse> UpdatePodSandboxResources(UpdatePodSandboxResourcesRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        if (_sandboxes.Get(request.PodSandboxId) is null)
            throw new RpcException(new Status(StatusCode.NotFound, $"pod_sandbox_id: pod sandbox {request.PodSandboxId} not found"));
        foreach (var (field, resources) in new[] { ("overhead", request.Overhead), ("resources", request.Resources) })
        {
            if (resources is null) continue;
            if (resources.CpuShares < 0 || resources.CpuQuota < -1 || resources.CpuPeriod < 0 || resources.MemoryLimitInBytes < 0)
                throw InvalidArgument($"{field}: cpu_shares, cpu_period and memory_limit_in_bytes must not be negative, cpu_quota not below -1");
        }
        return Task.FromResult(new UpdatePodSandboxResourcesResponse());
    }
}
