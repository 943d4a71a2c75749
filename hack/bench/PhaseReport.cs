using System.Text;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>Where Berth's pod start spends its time, phase by phase, from the spans berthd exported over OTLP.</summary>
internal static class PhaseReport
{
    /// <summary>The RPCs of a pod start and, indented, their phases, in the order they run.</summary>
    private static readonly (string Name, int Depth)[] Rows =
    [
        ("runtime.v1.RuntimeService/RunPodSandbox", 0),
        ("sandbox.namespaces", 1),
        ("sandbox.network", 1),
        ("cni.add", 2),
        ("sandbox.shm", 1),
        ("sandbox.files", 1),
        ("runtime.v1.RuntimeService/CreateContainer", 0),
        ("container.rootfs", 1),
        ("container.spec", 1),
        ("container.nri", 1),
        ("container.bundle", 1),
        ("container.shim", 1),
        ("runtime.create", 2),
        ("runtime.v1.RuntimeService/StartContainer", 0),
        ("runtime.start", 1),
    ];

    public static string Format(IReadOnlyList<ReceivedSpan> spans, IReadOnlyList<(DateTime From, DateTime To)> windows, int pods)
    {
        var text = new StringBuilder();
        text.AppendLine($"Berth's pod start by phase, from the spans berthd sent to an OTLP collector during the run above (ms, p50 and p99 of each span;");
        text.AppendLine($"container phases count both containers of a pod):");
        text.AppendLine($"                                               10 pods p50    p99 | first wave p50    p99 | last wave ({pods - ScaleBenchmark.Wave + 1}-{pods}) p50    p99");
        foreach (var (name, depth) in Rows)
        {
            var cells = windows.Select(w => spans.Where(s => s.Name == name && s.Start >= w.From && s.End <= w.To).Select(s => s.Duration.TotalMilliseconds).ToList()).ToList();
            if (cells.All(c => c.Count == 0)) continue;
            var label = new string(' ', depth * 2) + (name.StartsWith("runtime.v1.", StringComparison.Ordinal) ? name[(name.IndexOf('/', StringComparison.Ordinal) + 1)..] : name);
            text.Append($"  {label,-40}");
            foreach (var (cell, i) in cells.Select((c, i) => (c, i)))
                text.Append(i == 0 ? $"{P(cell, 50),13:F1} {P(cell, 99),6:F1} |" : i == 1 ? $"{P(cell, 50),15:F1} {P(cell, 99),6:F1} |" : $"{P(cell, 50),23:F1} {P(cell, 99),6:F1}");
            text.AppendLine();
        }
        return text.ToString().TrimEnd();
    }

    private static double P(List<double> values, int percentile) => values.Count == 0 ? double.NaN : Percentile.Of(values, percentile);
}
