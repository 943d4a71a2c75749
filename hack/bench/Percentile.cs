namespace Berth.Bench;

internal static class Percentile
{
    /// <summary>The nearest-rank percentile of <paramref name="values"/>.</summary>
    public static double Of(IReadOnlyCollection<double> values, int percentile)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    /// <summary>Times <paramref name="calls"/> calls after five untimed ones.</summary>
    public static async Task<List<double>> TimeAsync(int calls, Func<Task> call)
    {
        var times = new List<double>();
        for (var i = 0; i < calls + 5; i++)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            await call();
            if (i >= 5) times.Add(watch.Elapsed.TotalMilliseconds);
        }
        return times;
    }
}
