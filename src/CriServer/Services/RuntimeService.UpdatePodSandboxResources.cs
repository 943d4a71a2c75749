using Berth.Cri.V1;
using ContainerResources = Berth.Runtime.Spec.ContainerResources;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    /// <summary>
    /// Writes the pod's total (its containers' resources plus the runtime class overhead) into the pod's cgroup.
    /// kubelet resizes that cgroup itself before it calls this and takes a failure as a warning, so the write
    /// repeats its values; callers other than kubelet get their change applied.
    /// </summary>
    public override async Task<UpdatePodSandboxResourcesResponse> UpdatePodSandboxResources(UpdatePodSandboxResourcesRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var sandbox = _sandboxes.Find(request.PodSandboxId)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod_sandbox_id: pod sandbox {request.PodSandboxId} not found"));
        foreach (var (field, resources) in new[] { ("overhead", request.Overhead), ("resources", request.Resources) })
        {
            if (resources is null) continue;
            if (resources.CpuShares < 0) throw InvalidArgument($"{field}.cpu_shares: {resources.CpuShares} is negative");
            if (resources.CpuPeriod < 0) throw InvalidArgument($"{field}.cpu_period: {resources.CpuPeriod} is negative");
            if (resources.CpuQuota < -1) throw InvalidArgument($"{field}.cpu_quota: {resources.CpuQuota} is below -1");
            if (resources.MemoryLimitInBytes < 0) throw InvalidArgument($"{field}.memory_limit_in_bytes: {resources.MemoryLimitInBytes} is negative");
        }
        if (string.IsNullOrEmpty(sandbox.CgroupParent))
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"pod sandbox {sandbox.Id} has no cgroup_parent: it has no pod cgroup to update"));
        await _nri.UpdatePodSandboxAsync(
            sandbox, request.Overhead is null ? null : ContainerMapper.Resources(request.Overhead), request.Resources is null ? null : ContainerMapper.Resources(request.Resources), context.CancellationToken);
        _podCgroups.Update(sandbox.CgroupParent, PodTotal(ContainerMapper.Resources(request.Resources), ContainerMapper.Resources(request.Overhead)));
        await _nri.PostUpdatePodSandboxAsync(sandbox, context.CancellationToken);
        return new UpdatePodSandboxResourcesResponse();
    }

    /// <summary>
    /// Limits and shares add the overhead to the containers' sum, as kubelet sizes the pod cgroup; an unset (0) or
    /// unlimited (-1) value stays so. Period, cpusets, hugepages and unified come from the containers' side.
    /// </summary>
    internal static ContainerResources PodTotal(ContainerResources containers, ContainerResources overhead)
    {
        static long Add(long value, long extra) => value > 0 ? value + Math.Max(extra, 0) : value;
        return containers with
        {
            CpuShares = Add(containers.CpuShares, overhead.CpuShares),
            CpuQuota = Add(containers.CpuQuota, overhead.CpuQuota),
            CpuPeriod = containers.CpuPeriod > 0 ? containers.CpuPeriod : overhead.CpuPeriod,
            MemoryLimitInBytes = Add(containers.MemoryLimitInBytes, overhead.MemoryLimitInBytes),
            MemorySwapLimitInBytes = Add(containers.MemorySwapLimitInBytes, overhead.MemorySwapLimitInBytes),
        };
    }
}
