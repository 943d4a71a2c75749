using ScottPlot;

namespace Berth.Bench;

/// <summary>The benchmark's charts, drawn with ScottPlot into PNGs next to the results file.</summary>
internal static class BenchPlot
{
    /// <summary>One line per series over a shared x axis.</summary>
    public static void Lines(string path, string title, string xLabel, string yLabel, IEnumerable<(string Label, double[] X, double[] Y)> series)
    {
        var plot = new Plot();
        foreach (var (label, x, y) in series)
        {
            var line = plot.Add.Scatter(x, y);
            line.LegendText = label;
            line.LineWidth = 2;
            line.MarkerSize = 5;
        }
        Finish(plot, path, title, xLabel, yLabel);
    }

    /// <summary>
    /// Bars grouped by category, one bar per series, on a log10 axis (one runtime can be a hundred times the other).
    /// </summary>
    public static void LogBars(string path, string title, string yLabel, string[] categories, IEnumerable<(string Label, double[] Values)> series)
    {
        var plot = new Plot();
        var all = series.ToList();
        var width = 0.8 / all.Count;
        for (var s = 0; s < all.Count; s++)
        {
            var bars = all[s].Values.Select((value, c) => new Bar
            {
                Position = c + (s - (all.Count - 1) / 2.0) * width,
                Value = Math.Log10(Math.Max(value, 0.1)) + 1, // bars start at 0.1 ms
                Size = width * 0.9,
                FillColor = plot.Add.Palette.GetColor(s),
                Label = value.ToString(value < 10 ? "F1" : "F0", System.Globalization.CultureInfo.InvariantCulture),
            }).ToList();
            var added = plot.Add.Bars(bars);
            added.LegendText = all[s].Label;
            added.ValueLabelStyle.FontSize = 11;
        }
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, categories.Length).Select(c => (double)c)], categories);
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (var decade = -1; decade <= 5; decade++)
            ticks.AddMajor(decade + 1, Math.Pow(10, decade).ToString(System.Globalization.CultureInfo.InvariantCulture));
        plot.Axes.Left.TickGenerator = ticks;
        plot.Axes.Margins(bottom: 0);
        Finish(plot, path, title, "", yLabel);
    }

    private static void Finish(Plot plot, string path, string title, string xLabel, string yLabel)
    {
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, 900, 500);
    }
}
