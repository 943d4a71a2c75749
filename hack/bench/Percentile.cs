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

    /// <summary>
    /// Times up to <paramref name="calls"/> calls after three untimed ones, stopping early once
    /// <paramref name="budget"/> is spent (and at least three were timed): some runtimes take seconds per call.
    /// </summary>
    public static async Task<List<double>> TimeWithinAsync(int calls, TimeSpan budget, Func<Task> call)
    {
        for (var i = 0; i < 3; i++) await call();
        var times = new List<double>();
        var spent = System.Diagnostics.Stopwatch.StartNew();
        while (times.Count < calls && (times.Count < 3 || spent.Elapsed < budget))
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            await call();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        return times;
    }
}
