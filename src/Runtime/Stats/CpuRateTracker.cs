using System.Collections.Concurrent;

namespace Berth.Runtime.Stats;

/// <summary>
/// usage_nano_cores needs two readings of the CPU counter. The tracker keeps, per cgroup, the last two readings a
/// periodic sampler took, and rates a fresh reading against the newest of them that is at least
/// <see cref="MinimumInterval"/> old, so two stats calls in quick succession still get a steady figure.
/// </summary>
public sealed class CpuRateTracker
{
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromSeconds(1);

    private readonly record struct Reading(long Timestamp, ulong UsageNanoseconds);

    private sealed record Baseline(Reading Last, Reading? Before);

    private readonly ConcurrentDictionary<string, Baseline> _baselines = new(StringComparer.Ordinal);

    /// <summary>Records a periodic reading of <paramref name="key"/>'s CPU counter.</summary>
    public void Observe(string key, long timestamp, ulong usageNanoseconds)
    {
        var reading = new Reading(timestamp, usageNanoseconds);
        _baselines.AddOrUpdate(key, static (_, r) => new Baseline(r, null), static (_, old, r) => new Baseline(r, old.Last), reading);
    }

    /// <summary>Cores in use, in billionths, between a baseline and this reading; null until there is a baseline.</summary>
    public ulong? Rate(string key, long timestamp, ulong usageNanoseconds)
    {
        if (!_baselines.TryGetValue(key, out var baseline))
        {
            // The first reading becomes the baseline, so the next call has a rate even before the sampler runs.
            Observe(key, timestamp, usageNanoseconds);
            return null;
        }
        var minimum = MinimumInterval.Ticks * 100;
        var reference = timestamp - baseline.Last.Timestamp >= minimum ? baseline.Last : baseline.Before ?? baseline.Last;
        var elapsed = timestamp - reference.Timestamp;
        if (elapsed <= 0) return null;
        // A counter that went backwards belongs to a new cgroup of the same name.
        if (usageNanoseconds < reference.UsageNanoseconds) return null;
        return (ulong)((double)(usageNanoseconds - reference.UsageNanoseconds) / elapsed * 1_000_000_000);
    }

    /// <summary>Drops the baselines of every key not in <paramref name="live"/> (containers and pods that are gone).</summary>
    public void Retain(IReadOnlySet<string> live)
    {
        foreach (var key in _baselines.Keys)
        {
            if (!live.Contains(key)) _baselines.TryRemove(key, out _);
        }
    }
}
