namespace Berth.Bench;

internal static class Percentile
{
    /// <summary>The nearest-rank percentile of <paramref name="values"/>.</summary>
    public static double Of(IReadOnlyCollection<double> values, int percentile)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }
}
