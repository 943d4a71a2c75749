using Berth.Cri.V1;
using Berth.Runtime.Stats;
using Berth.Sandbox;

namespace Berth.CriServer.Stats;

/// <summary>
/// ListPodSandboxMetrics in cAdvisor's names, so kubelet's /metrics/cadvisor keeps its series when it takes them
/// from the runtime. Values come from the same readings as the stats RPCs. CRI carries integers: CPU time is whole
/// seconds, as the metric's name says.
/// </summary>
internal static class PodMetrics
{
    private static readonly string[] ContainerLabels = ["container", "id", "image", "name", "namespace", "pod"];
    private static readonly string[] NetworkLabels = [.. ContainerLabels, "interface"];

    private sealed record Definition(string Name, string Help, MetricType Type, bool Network, Func<CgroupSample, ulong?>? Value);

    private static readonly Definition[] Definitions =
    [
        new("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", MetricType.Counter, false, s => s.CpuUsageNanoseconds / 1_000_000_000),
        new("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", MetricType.Gauge, false, s => s.MemoryUsageBytes),
        new("container_memory_working_set_bytes", "Current working set in bytes.", MetricType.Gauge, false, s => s.MemoryWorkingSetBytes),
        new("container_memory_rss", "Size of RSS in bytes.", MetricType.Gauge, false, s => s.MemoryRssBytes),
        new("container_memory_swap", "Container swap usage in bytes.", MetricType.Gauge, false, s => s.SwapUsageBytes),
        new("container_spec_memory_limit_bytes", "Memory limit for the container.", MetricType.Gauge, false, s => s.MemoryLimitBytes ?? 0),
        new("container_processes", "Number of processes running inside the container.", MetricType.Gauge, false, s => s.Processes),
        new("container_fs_reads_bytes_total", "Cumulative count of bytes read.", MetricType.Counter, false, s => s.IoReadBytes),
        new("container_fs_writes_bytes_total", "Cumulative count of bytes written.", MetricType.Counter, false, s => s.IoWriteBytes),
        new("container_network_receive_bytes_total", "Cumulative count of bytes received.", MetricType.Counter, true, null),
        new("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", MetricType.Counter, true, null),
        new("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", MetricType.Counter, true, null),
        new("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", MetricType.Counter, true, null),
    ];

    public static IEnumerable<MetricDescriptor> Descriptors() => Definitions.Select(d =>
    {
        var descriptor = new MetricDescriptor { Name = d.Name, Help = d.Help };
        descriptor.LabelKeys.AddRange(d.Network ? NetworkLabels : ContainerLabels);
        return descriptor;
    });

    public static PodSandboxMetrics ToCri(SandboxRecord sandbox, PodSample sample)
    {
        var metrics = new PodSandboxMetrics { PodSandboxId = sandbox.Id };
        // The pod's own series: its cgroup (container label empty, as cAdvisor names a pod cgroup) and its network.
        string[] podLabels = ["", sandbox.Id, "", sandbox.Id, sandbox.Namespace, sandbox.Name];
        if (sample.Cgroup is { } pod) metrics.Metrics.AddRange(CgroupMetrics(pod, podLabels));
        foreach (var usage in sample.Network ?? [])
        {
            string[] labels = [.. podLabels, usage.Name];
            metrics.Metrics.Add(Metric("container_network_receive_bytes_total", MetricType.Counter, sample.Timestamp, usage.RxBytes, labels));
            metrics.Metrics.Add(Metric("container_network_receive_errors_total", MetricType.Counter, sample.Timestamp, usage.RxErrors, labels));
            metrics.Metrics.Add(Metric("container_network_transmit_bytes_total", MetricType.Counter, sample.Timestamp, usage.TxBytes, labels));
            metrics.Metrics.Add(Metric("container_network_transmit_errors_total", MetricType.Counter, sample.Timestamp, usage.TxErrors, labels));
        }
        foreach (var container in sample.Containers)
        {
            if (container.Cgroup is not { } cgroup) continue;
            var record = container.Record;
            var entry = new ContainerMetrics { ContainerId = record.Id };
            entry.Metrics.AddRange(CgroupMetrics(cgroup, [record.Name, record.Id, record.Image, record.Id, sandbox.Namespace, sandbox.Name]));
            metrics.ContainerMetrics.Add(entry);
        }
        return metrics;
    }

    private static IEnumerable<Metric> CgroupMetrics(CgroupSample sample, string[] labels)
    {
        foreach (var definition in Definitions)
        {
            if (definition.Value?.Invoke(sample) is { } value) yield return Metric(definition.Name, definition.Type, sample.Timestamp, value, labels);
        }
    }

    private static Metric Metric(string name, MetricType type, long timestamp, ulong value, string[] labels)
    {
        var metric = new Metric { Name = name, Timestamp = timestamp, MetricType = type, Value = new UInt64Value { Value = value } };
        metric.LabelValues.AddRange(labels);
        return metric;
    }
}
