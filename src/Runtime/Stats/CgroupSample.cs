namespace Berth.Runtime.Stats;

/// <summary>One pressure line of a PSI file (<c>some</c> or <c>full</c>): averages in percent, total in microseconds.</summary>
public readonly record struct PressureData(ulong TotalMicroseconds, double Avg10, double Avg60, double Avg300);

/// <summary>A PSI file: <c>some</c> tasks stalled, and <c>full</c> (all tasks stalled), which cpu.pressure may lack.</summary>
public sealed record Pressure(PressureData Some, PressureData? Full);

/// <summary>
/// One reading of a cgroup, in the terms CRI reports. A value the cgroup (or its cgroup version) does not have is
/// null rather than zero, so the caller can leave the field out.
/// </summary>
public sealed record CgroupSample
{
    /// <summary>When it was read, in nanoseconds since the Unix epoch.</summary>
    public required long Timestamp { get; init; }

    public ulong? CpuUsageNanoseconds { get; init; }

    public ulong? MemoryUsageBytes { get; init; }

    /// <summary>Usage less inactive file pages: what the kernel could not reclaim cheaply, and what eviction compares.</summary>
    public ulong? MemoryWorkingSetBytes { get; init; }

    public ulong? MemoryRssBytes { get; init; }
    public ulong? PageFaults { get; init; }
    public ulong? MajorPageFaults { get; init; }

    /// <summary>The memory limit, or null when there is none.</summary>
    public ulong? MemoryLimitBytes { get; init; }

    public ulong? SwapUsageBytes { get; init; }

    /// <summary>The swap limit, or null when there is none (or swap is not accounted).</summary>
    public ulong? SwapLimitBytes { get; init; }

    public ulong? Processes { get; init; }
    public ulong? IoReadBytes { get; init; }
    public ulong? IoWriteBytes { get; init; }

    public Pressure? CpuPressure { get; init; }
    public Pressure? MemoryPressure { get; init; }
    public Pressure? IoPressure { get; init; }

    /// <summary>Bytes the cgroup may still allocate before its limit; null without a limit.</summary>
    public ulong? MemoryAvailableBytes =>
        MemoryLimitBytes is { } limit && MemoryWorkingSetBytes is { } workingSet ? limit > workingSet ? limit - workingSet : 0 : null;

    public ulong? SwapAvailableBytes =>
        SwapLimitBytes is { } limit && SwapUsageBytes is { } usage ? limit > usage ? limit - usage : 0 : null;
}
