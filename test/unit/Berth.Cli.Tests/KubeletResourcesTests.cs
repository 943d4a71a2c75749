using Berth.Cli.Pods;
using k8s.Models;

namespace Berth.Cli.Tests;

/// <summary>The kubelet's formulas, pinned by the values its own tests use.</summary>
public sealed class KubeletResourcesTests
{
    private static readonly NodeFacts Node = new("node", 4, 8L << 30, CgroupV2: false, SwapAccounting: true, SystemdCgroups: false);

    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 2)]
    [InlineData(100, 102)]
    [InlineData(250, 256)]
    [InlineData(1000, 1024)]
    [InlineData(500_000, 262_144)]
    public void Milli_CPU_becomes_shares(long milliCpu, long shares) => Assert.Equal(shares, KubeletResources.MilliCpuToShares(milliCpu));

    [Theory]
    [InlineData(0, 0)]
    [InlineData(5, 1000)]
    [InlineData(500, 50_000)]
    [InlineData(2000, 200_000)]
    public void Milli_CPU_limits_become_a_quota_of_at_least_1ms(long milliCpu, long quota) =>
        Assert.Equal(quota, KubeletResources.MilliCpuToQuota(milliCpu, KubeletResources.CpuPeriod));

    private static V1Container Container(string? cpuRequest, string? memoryRequest, string? cpuLimit, string? memoryLimit)
    {
        Dictionary<string, ResourceQuantity>? Map(string? cpu, string? memory)
        {
            var map = new Dictionary<string, ResourceQuantity>();
            if (cpu is not null) map["cpu"] = new ResourceQuantity(cpu);
            if (memory is not null) map["memory"] = new ResourceQuantity(memory);
            return map.Count == 0 ? null : map;
        }
        return new V1Container { Name = "c", Resources = new V1ResourceRequirements { Requests = Map(cpuRequest, memoryRequest), Limits = Map(cpuLimit, memoryLimit) } };
    }

    [Fact]
    public void QoS_classes_follow_requests_and_limits()
    {
        Assert.Equal(QosClass.BestEffort, KubeletResources.Qos(new V1PodSpec { Containers = [Container(null, null, null, null)] }));
        Assert.Equal(QosClass.Guaranteed, KubeletResources.Qos(new V1PodSpec { Containers = [Container(null, null, "1", "1Gi")] }));
        Assert.Equal(QosClass.Burstable, KubeletResources.Qos(new V1PodSpec { Containers = [Container("500m", null, "1", "1Gi")] }));
        Assert.Equal(QosClass.Burstable, KubeletResources.Qos(new V1PodSpec { Containers = [Container(null, null, "1", "1Gi"), Container(null, null, null, null)] }));
    }

    [Fact]
    public void A_burstable_container_gets_shares_quota_memory_swap_and_an_oom_score_from_its_request()
    {
        var linux = KubeletResources.Linux(Container("250m", "4Gi", "500m", "6Gi").Resources, Node, QosClass.Burstable);
        Assert.Equal(256, linux.CpuShares);
        Assert.Equal(50_000, linux.CpuQuota);
        Assert.Equal(100_000, linux.CpuPeriod);
        Assert.Equal(6L << 30, linux.MemoryLimitInBytes);
        Assert.Equal(6L << 30, linux.MemorySwapLimitInBytes);
        Assert.Equal(500, linux.OomScoreAdj); // 1000 - 1000 * 4Gi / 8Gi
    }

    [Fact]
    public void Guaranteed_and_best_effort_oom_scores_and_the_v2_swap_limit()
    {
        var v2 = Node with { CgroupV2 = true };
        var guaranteed = KubeletResources.Linux(Container(null, null, "1", "1Gi").Resources, v2, QosClass.Guaranteed);
        Assert.Equal(-997, guaranteed.OomScoreAdj);
        Assert.Equal(1024, guaranteed.CpuShares); // the request defaults to the limit
        Assert.Equal("0", guaranteed.Unified["memory.swap.max"]);
        Assert.Equal(0, guaranteed.MemorySwapLimitInBytes);
        var bestEffort = KubeletResources.Linux(null, Node, QosClass.BestEffort);
        Assert.Equal(1000, bestEffort.OomScoreAdj);
        Assert.Equal(2, bestEffort.CpuShares);
        Assert.Equal(0, bestEffort.CpuQuota);
    }

    [Fact]
    public void The_pod_cgroup_sums_app_containers_or_takes_the_largest_init_container()
    {
        var spec = new V1PodSpec
        {
            Containers = [Container("100m", null, "200m", "64Mi"), Container("100m", null, null, "64Mi")],
            InitContainers = [Container("1", null, "1", "32Mi")],
        };
        var pod = KubeletResources.Pod(spec, Node);
        Assert.Equal(1024, pod.CpuShares);
        Assert.Equal(100_000, pod.CpuQuota);
        Assert.Equal(128L << 20, pod.MemoryLimitInBytes);
    }
}
