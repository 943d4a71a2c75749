using System.Runtime.CompilerServices;
using Berth.Cri.V1;
using Berth.Runtime.Stats;
using Berth.Sandbox;
using RuntimeFilesystemUsage = Berth.ImageStore.FilesystemUsage;

namespace Berth.CriServer.Stats;

/// <summary>Readings into CRI stats messages. A figure Berth does not have is left out, never sent as zero.</summary>
internal static class StatsMapper
{
    // Attributes are a record's labels and annotations (most of a stats message's objects), and a record never
    // changes: they are made once per record and shared by every stats reply, which only reads them.
    private static readonly ConditionalWeakTable<Berth.Runtime.Containers.ContainerRecord, ContainerAttributes> ContainerAttributesOf = new();
    private static readonly ConditionalWeakTable<SandboxRecord, PodSandboxAttributes> PodAttributesOf = new();

    private static ContainerAttributes NewAttributes(Berth.Runtime.Containers.ContainerRecord record)
    {
        var attributes = new ContainerAttributes { Id = record.Id, Metadata = new ContainerMetadata { Name = record.Name, Attempt = record.Attempt } };
        attributes.Labels.Add(record.Labels);
        attributes.Annotations.Add(record.Annotations);
        return attributes;
    }

    private static PodSandboxAttributes NewAttributes(SandboxRecord sandbox)
    {
        var attributes = new PodSandboxAttributes
        {
            Id = sandbox.Id,
            Metadata = new PodSandboxMetadata { Name = sandbox.Name, Namespace = sandbox.Namespace, Uid = sandbox.Uid, Attempt = sandbox.Attempt },
        };
        attributes.Labels.Add(sandbox.Labels);
        attributes.Annotations.Add(sandbox.Annotations);
        return attributes;
    }

    public static ContainerStats ToCri(ContainerSample sample, string writableLayerMountpoint)
    {
        var stats = new ContainerStats { Attributes = ContainerAttributesOf.GetValue(sample.Record, NewAttributes) };
        if (sample.Cgroup is { } cgroup)
        {
            stats.Cpu = Cpu(cgroup, sample.CpuNanoCores);
            stats.Memory = Memory(cgroup);
            stats.Swap = Swap(cgroup);
            if (cgroup.IoPressure is { } io) stats.Io = new IoUsage { Timestamp = cgroup.Timestamp, Psi = Psi(io) };
        }
        if (sample.WritableLayer is { } layer) stats.WritableLayer = Filesystem(layer, writableLayerMountpoint);
        return stats;
    }

    public static PodSandboxStats ToCri(SandboxRecord sandbox, PodSample sample, string writableLayerMountpoint)
    {
        var stats = new PodSandboxStats { Attributes = PodAttributesOf.GetValue(sandbox, NewAttributes), Linux = new LinuxPodSandboxStats() };
        var linux = stats.Linux;
        if (sample.Cgroup is { } cgroup)
        {
            linux.Cpu = Cpu(cgroup, sample.CpuNanoCores);
            linux.Memory = Memory(cgroup);
            if (cgroup.Processes is { } processes)
                linux.Process = new ProcessUsage { Timestamp = cgroup.Timestamp, ProcessCount = new UInt64Value { Value = processes } };
            if (cgroup.IoPressure is { } io) linux.Io = new IoUsage { Timestamp = cgroup.Timestamp, Psi = Psi(io) };
        }
        if (sample.Network is { } interfaces)
        {
            var network = new NetworkUsage { Timestamp = sample.Timestamp };
            foreach (var usage in interfaces)
            {
                var cri = new NetworkInterfaceUsage
                {
                    Name = usage.Name,
                    RxBytes = new UInt64Value { Value = usage.RxBytes },
                    RxErrors = new UInt64Value { Value = usage.RxErrors },
                    TxBytes = new UInt64Value { Value = usage.TxBytes },
                    TxErrors = new UInt64Value { Value = usage.TxErrors },
                };
                network.Interfaces.Add(cri);
                // CNI plugins name the pod's interface eth0 (CNI_IFNAME), which kubelet reports as the default.
                if (usage.Name == "eth0") network.DefaultInterface = cri;
            }
            linux.Network = network;
        }
        foreach (var container in sample.Containers) linux.Containers.Add(ToCri(container, writableLayerMountpoint));
        return stats;
    }

    private static CpuUsage Cpu(CgroupSample cgroup, ulong? nanoCores)
    {
        var cpu = new CpuUsage { Timestamp = cgroup.Timestamp };
        if (cgroup.CpuUsageNanoseconds is { } total) cpu.UsageCoreNanoSeconds = new UInt64Value { Value = total };
        if (nanoCores is { } rate) cpu.UsageNanoCores = new UInt64Value { Value = rate };
        if (cgroup.CpuPressure is { } psi) cpu.Psi = Psi(psi);
        return cpu;
    }

    private static MemoryUsage Memory(CgroupSample cgroup)
    {
        var memory = new MemoryUsage { Timestamp = cgroup.Timestamp };
        if (cgroup.MemoryWorkingSetBytes is { } workingSet) memory.WorkingSetBytes = new UInt64Value { Value = workingSet };
        if (cgroup.MemoryAvailableBytes is { } available) memory.AvailableBytes = new UInt64Value { Value = available };
        if (cgroup.MemoryUsageBytes is { } usage) memory.UsageBytes = new UInt64Value { Value = usage };
        if (cgroup.MemoryRssBytes is { } rss) memory.RssBytes = new UInt64Value { Value = rss };
        if (cgroup.PageFaults is { } faults) memory.PageFaults = new UInt64Value { Value = faults };
        if (cgroup.MajorPageFaults is { } major) memory.MajorPageFaults = new UInt64Value { Value = major };
        if (cgroup.MemoryPressure is { } psi) memory.Psi = Psi(psi);
        return memory;
    }

    private static SwapUsage? Swap(CgroupSample cgroup)
    {
        if (cgroup.SwapUsageBytes is null) return null;
        var swap = new SwapUsage { Timestamp = cgroup.Timestamp, SwapUsageBytes = new UInt64Value { Value = cgroup.SwapUsageBytes.Value } };
        if (cgroup.SwapAvailableBytes is { } available) swap.SwapAvailableBytes = new UInt64Value { Value = available };
        return swap;
    }

    private static PsiStats Psi(Pressure pressure)
    {
        static PsiData Data(PressureData d) => new() { Total = d.TotalMicroseconds, Avg10 = d.Avg10, Avg60 = d.Avg60, Avg300 = d.Avg300 };
        var psi = new PsiStats { Some = Data(pressure.Some) };
        if (pressure.Full is { } full) psi.Full = Data(full);
        return psi;
    }

    public static FilesystemUsage Filesystem(RuntimeFilesystemUsage usage, string mountpoint) => new()
    {
        Timestamp = usage.Timestamp.ToUnixTimeMilliseconds() * 1_000_000,
        FsId = new FilesystemIdentifier { Mountpoint = mountpoint },
        UsedBytes = new UInt64Value { Value = usage.UsedBytes },
        InodesUsed = new UInt64Value { Value = usage.InodesUsed },
    };
}
