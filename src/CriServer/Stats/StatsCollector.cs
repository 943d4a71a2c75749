using System.Collections.Concurrent;
using Berth.CriServer.Configuration;
using Berth.ImageStore;
using Berth.Runtime.Cgroups;
using Berth.Runtime.Containers;
using Berth.Runtime.Stats;
using Berth.Sandbox;
using RuntimeState = Berth.Runtime.Containers.ContainerState;

namespace Berth.CriServer.Stats;

/// <summary>A pod's readings: its cgroup (or its containers' summed), its containers', and its network.</summary>
public sealed record PodSample(CgroupSample? Cgroup, ulong? CpuNanoCores, IReadOnlyList<ContainerSample> Containers, IReadOnlyList<InterfaceUsage>? Network, long Timestamp);

/// <summary>A container's readings; the cgroup's is null once the container has stopped (its cgroup is gone).</summary>
public sealed record ContainerSample(ContainerRecord Record, CgroupSample? Cgroup, ulong? CpuNanoCores, FilesystemUsage? WritableLayer);

/// <summary>
/// The readings behind the stats RPCs. Cgroups are read at call time: a few small pseudo-files per container.
/// What is costly or needs history is done on a period in the background instead: the CPU baselines that
/// usage_nano_cores is rated against, and the walk of each writable layer, which no RPC ever waits for.
/// </summary>
public sealed partial class StatsCollector(
    ContainerManager containers, SandboxManager sandboxes, CgroupReader cgroups, StatsConfig config, ILogger<StatsCollector> logger)
    : BackgroundService
{
    private const string PodKeyPrefix = "pod/";
    private readonly CpuRateTracker _cpu = new();
    private readonly ConcurrentDictionary<string, FilesystemUsage> _layers = new(StringComparer.Ordinal);
    // When each writable layer is walked next: a layer whose walk took t waits at least 50·t, so one container's
    // million files cost berthd at most 2 % of a core, whatever the collect period.
    private readonly Dictionary<string, long> _layerDue = new(StringComparer.Ordinal);
    private const int LayerWalkDutyFactor = 50;

    public ContainerSample Container(ContainerRecord record)
    {
        var cgroup = record.State == RuntimeState.Running && record.CgroupsPath.Length > 0 ? cgroups.Read(ContainerManager.CgroupDirectoryOf(record)) : null;
        var rate = cgroup?.CpuUsageNanoseconds is { } usage ? _cpu.Rate(record.Id, cgroup.Timestamp, usage) : null;
        return new ContainerSample(record, cgroup, rate, _layers.GetValueOrDefault(record.Id));
    }

    /// <summary>A pod's readings, from its containers' (<paramref name="podContainers"/>: the pod's, any state).</summary>
    public async Task<PodSample> PodAsync(SandboxRecord sandbox, IEnumerable<ContainerRecord> podContainers, CancellationToken cancellationToken)
    {
        var samples = podContainers.Where(c => c.State != RuntimeState.Creating).Select(Container).ToList();
        var cgroup = PodCgroup(sandbox, samples);
        var rate = cgroup?.CpuUsageNanoseconds is { } usage ? _cpu.Rate(PodKeyPrefix + sandbox.Id, cgroup.Timestamp, usage) : null;
        var network = await sandboxes.NetworkUsageAsync(sandbox.Id, cancellationToken);
        return new PodSample(cgroup, rate, samples, network, cgroup?.Timestamp ?? Now());
    }

    /// <summary>Every container, by pod: for callers that sample many pods, so the store is listed once.</summary>
    public ILookup<string, ContainerRecord> ContainersByPod() => containers.List().ToLookup(c => c.PodId, StringComparer.Ordinal);

    /// <summary>Bytes and inodes of all writable layers, as last measured: the containers' share of the filesystem.</summary>
    public (ulong Bytes, ulong Inodes, DateTimeOffset Timestamp) WritableLayersTotal()
    {
        ulong bytes = 0, inodes = 0;
        var timestamp = DateTimeOffset.UnixEpoch;
        foreach (var usage in _layers.Values)
        {
            bytes += usage.UsedBytes;
            inodes += usage.InodesUsed;
            if (usage.Timestamp > timestamp) timestamp = usage.Timestamp;
        }
        return (bytes, inodes, timestamp == DateTimeOffset.UnixEpoch ? DateTimeOffset.UtcNow : timestamp);
    }

    /// <summary>
    /// kubelet's pod cgroup (the sandbox's cgroup parent) holds all the pod's containers. A pod without one has no
    /// cgroup of its own: its figures are its running containers' summed.
    /// </summary>
    private CgroupSample? PodCgroup(SandboxRecord sandbox, IReadOnlyList<ContainerSample> samples)
    {
        if (!string.IsNullOrEmpty(sandbox.CgroupParent))
        {
            var parent = CgroupPaths.Resolve(sandbox.CgroupParent);
            if (cgroups.Read(parent) is { } own) return own;
        }
        var running = samples.Select(s => s.Cgroup).OfType<CgroupSample>().ToList();
        if (running.Count == 0) return null;
        static ulong? Sum(IEnumerable<ulong?> values) => values.Aggregate((ulong?)0, (total, v) => v is { } x ? (total ?? 0) + x : total);
        return new CgroupSample
        {
            Timestamp = running.Max(s => s.Timestamp),
            CpuUsageNanoseconds = Sum(running.Select(s => s.CpuUsageNanoseconds)),
            MemoryUsageBytes = Sum(running.Select(s => s.MemoryUsageBytes)),
            MemoryWorkingSetBytes = Sum(running.Select(s => s.MemoryWorkingSetBytes)),
            MemoryRssBytes = Sum(running.Select(s => s.MemoryRssBytes)),
            PageFaults = Sum(running.Select(s => s.PageFaults)),
            MajorPageFaults = Sum(running.Select(s => s.MajorPageFaults)),
            SwapUsageBytes = Sum(running.Select(s => s.SwapUsageBytes)),
            Processes = Sum(running.Select(s => s.Processes)),
            IoReadBytes = Sum(running.Select(s => s.IoReadBytes)),
            IoWriteBytes = Sum(running.Select(s => s.IoWriteBytes)),
        };
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(config.CollectPeriod);
        do
        {
            try
            {
                Collect(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogCollectFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One round: CPU baselines for containers and pods, writable layers measured, the departed forgotten.</summary>
    internal void Collect(CancellationToken cancellationToken)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var byPod = ContainersByPod();
        foreach (var sandbox in sandboxes.List())
        {
            var running = new List<ContainerSample>();
            foreach (var record in byPod[sandbox.Id])
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (record.State == RuntimeState.Creating) continue;
                seen.Add(record.Id);
                // Each cgroup is read once a round: for the container's baseline and for its pod's sum.
                if (record.State == RuntimeState.Running && record.CgroupsPath.Length > 0 && cgroups.Read(ContainerManager.CgroupDirectoryOf(record)) is { } sample)
                {
                    if (sample.CpuUsageNanoseconds is { } usage) _cpu.Observe(record.Id, sample.Timestamp, usage);
                    running.Add(new ContainerSample(record, sample, null, null));
                }
                MeasureLayer(record);
            }
            seen.Add(PodKeyPrefix + sandbox.Id);
            if (PodCgroup(sandbox, running) is { CpuUsageNanoseconds: { } podUsage } pod) _cpu.Observe(PodKeyPrefix + sandbox.Id, pod.Timestamp, podUsage);
        }
        foreach (var id in _layers.Keys.Where(id => !seen.Contains(id))) _layers.TryRemove(id, out _);
        foreach (var id in _layerDue.Keys.Where(id => !seen.Contains(id)).ToList()) _layerDue.Remove(id);
        _cpu.Retain(seen);
    }

    private void MeasureLayer(ContainerRecord record)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        if (_layerDue.TryGetValue(record.Id, out var due) && started < due) return;
        var layer = ContainerManager.WritableLayerOf(record);
        if (!Directory.Exists(layer)) return;
        _layers[record.Id] = FilesystemUsage.Measure(layer);
        var took = System.Diagnostics.Stopwatch.GetTimestamp() - started;
        _layerDue[record.Id] = started + took * LayerWalkDutyFactor;
    }

    private static long Now() => (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100;

    [LoggerMessage(Level = LogLevel.Warning, Message = "stats collection round failed")]
    private static partial void LogCollectFailed(ILogger logger, Exception exception);
}
