using k8s.Models;
using Berth.Cri.V1;

namespace Berth.Cli.Pods;

internal enum QosClass { Guaranteed, Burstable, BestEffort }

/// <summary>
/// Requests and limits as the kubelet turns them into CRI resources (kuberuntime's calculateLinuxResources and
/// helpers_linux.go): CPU requests become shares, CPU limits a quota over a 100 ms period, memory limits bytes, and
/// with swap off the swap limit equals the memory limit (v1) or memory.swap.max is 0 (v2). A request left unset where
/// a limit is set takes the limit's value, as the API server's defaulting does.
/// </summary>
internal static class KubeletResources
{
    public const long CpuPeriod = 100_000;
    private const long MinShares = 2;
    private const long MaxShares = 262_144;
    private const long SharesPerCpu = 1024;
    private const long MinQuotaPeriod = 1000;

    public static long MilliCpuToShares(long milliCpu) =>
        milliCpu == 0 ? MinShares : Math.Clamp(milliCpu * SharesPerCpu / 1000, MinShares, MaxShares);

    public static long MilliCpuToQuota(long milliCpu, long period) =>
        milliCpu == 0 ? 0 : Math.Max(milliCpu * period / 1000, MinQuotaPeriod);

    public static long? MilliCpu(IDictionary<string, ResourceQuantity>? quantities) =>
        quantities is not null && quantities.TryGetValue("cpu", out var cpu) ? (long)Math.Ceiling(cpu.ToDecimal() * 1000) : null;

    public static long? Bytes(IDictionary<string, ResourceQuantity>? quantities, string name) =>
        quantities is not null && quantities.TryGetValue(name, out var value) ? (long)Math.Ceiling(value.ToDecimal()) : null;

    /// <summary>The requests after defaulting: a resource with a limit and no request is requested at its limit.</summary>
    public static IDictionary<string, ResourceQuantity> Requests(V1ResourceRequirements? resources)
    {
        var requests = new Dictionary<string, ResourceQuantity>(resources?.Requests ?? new Dictionary<string, ResourceQuantity>());
        foreach (var (name, limit) in resources?.Limits ?? new Dictionary<string, ResourceQuantity>())
            requests.TryAdd(name, limit);
        return requests;
    }

    public static LinuxContainerResources Linux(V1ResourceRequirements? resources, NodeFacts node, QosClass qos)
    {
        var requests = Requests(resources);
        var limits = resources?.Limits;
        var linux = Compute(MilliCpu(requests), MilliCpu(limits), Bytes(limits, "memory"), node);
        var memoryRequest = Bytes(requests, "memory") ?? 0;
        linux.OomScoreAdj = qos switch
        {
            QosClass.Guaranteed => -997,
            QosClass.BestEffort => 1000,
            _ => Math.Clamp(1000 - 1000 * memoryRequest / Math.Max(1, node.MemoryBytes), 1000 - 997, 999),
        };
        foreach (var (name, value) in limits ?? new Dictionary<string, ResourceQuantity>())
        {
            if (!name.StartsWith("hugepages-", StringComparison.Ordinal)) continue;
            linux.HugepageLimits.Add(new HugepageLimit { PageSize = HugepageSize(name["hugepages-".Length..]), Limit = (ulong)value.ToDecimal() });
        }
        return linux;
    }

    /// <summary>
    /// The pod's own cgroup (kubelet's calculateSandboxResources): requests and limits summed over the app containers,
    /// or the largest init container's where that is more; a container without a limit adds nothing.
    /// </summary>
    public static LinuxContainerResources Pod(V1PodSpec spec, NodeFacts node)
    {
        long? Total(Func<V1Container, long?> pick)
        {
            var apps = spec.Containers.Select(pick).Where(v => v is not null).ToList();
            var inits = (spec.InitContainers ?? []).Select(pick).Where(v => v is not null).ToList();
            if (apps.Count == 0 && inits.Count == 0) return null;
            return Math.Max(apps.Sum(v => v!.Value), inits.Count == 0 ? 0 : inits.Max(v => v!.Value));
        }
        return Compute(Total(RequestCpu), Total(LimitCpu), Total(LimitMemory), node);
    }

    private static long? RequestCpu(V1Container c) => MilliCpu(Requests(c.Resources));

    private static long? LimitCpu(V1Container c) => MilliCpu(c.Resources?.Limits);

    private static long? LimitMemory(V1Container c) => Bytes(c.Resources?.Limits, "memory");

    private static LinuxContainerResources Compute(long? cpuRequest, long? cpuLimit, long? memoryLimit, NodeFacts node)
    {
        // CFS quota is on (the kubelet's default), so every container gets the period, and a quota of 0 (none)
        // unless it has a CPU limit.
        var linux = new LinuxContainerResources
        {
            CpuShares = MilliCpuToShares(cpuRequest ?? cpuLimit ?? 0),
            MemoryLimitInBytes = memoryLimit ?? 0,
            CpuPeriod = CpuPeriod,
            CpuQuota = MilliCpuToQuota(cpuLimit ?? 0, CpuPeriod),
        };
        if (node.CgroupV2) linux.Unified["memory.swap.max"] = "0";
        else if (node.SwapAccounting) linux.MemorySwapLimitInBytes = linux.MemoryLimitInBytes;
        return linux;
    }

    public static QosClass Qos(V1PodSpec spec)
    {
        var containers = spec.Containers.Concat(spec.InitContainers ?? []).ToList();
        var requests = containers.Select(c => Requests(c.Resources)).ToList();
        if (requests.All(r => !r.ContainsKey("cpu") && !r.ContainsKey("memory"))) return QosClass.BestEffort;
        var guaranteed = containers.All(c =>
        {
            var limits = c.Resources?.Limits;
            var defaulted = Requests(c.Resources);
            return limits is not null && limits.ContainsKey("cpu") && limits.ContainsKey("memory")
                   && MilliCpu(limits) == MilliCpu(defaulted) && Bytes(limits, "memory") == Bytes(defaulted, "memory");
        });
        return guaranteed ? QosClass.Guaranteed : QosClass.Burstable;
    }

    /// <summary>"2Mi" to "2MB", "1Gi" to "1GB": the kubelet's page size names (as the kernel's hugetlb files).</summary>
    private static string HugepageSize(string quantity)
    {
        var bytes = (long)new ResourceQuantity(quantity).ToDecimal();
        return bytes >= 1L << 30 ? $"{bytes >> 30}GB" : bytes >= 1L << 20 ? $"{bytes >> 20}MB" : $"{bytes >> 10}KB";
    }
}
