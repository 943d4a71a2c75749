using System.Text;

namespace Berth.Bench;

/// <summary>The scale benchmark's tables and its three charts.</summary>
internal static class ScaleReport
{
    public static string Format(ScaleResult b, ScaleResult c, int pods)
    {
        var text = new StringBuilder();
        text.AppendLine($"Node scale: pods with their own network namespace on the runtime's CNI bridge, a BestEffort pod cgroup and two containers (app and sidecar,");
        text.AppendLine($"busybox sleep) each, kubelet's calls; 10 pods started at once on an empty node, then {pods} in waves of {ScaleBenchmark.Wave} (ms):");
        text.AppendLine("                                             berth p50    p99 | containerd p50    p99 | ratio p50");
        Starts(text, "RunPodSandbox", b, c, p => [p.RunPodSandbox]);
        Starts(text, "Create+StartContainer", b, c, p => p.CreateStart);
        Starts(text, "Whole pod", b, c, p => [p.Whole]);
        double Flat(ScaleResult r, IEnumerable<PodStart> baseline) => P(Whole(r.Waves[^1]), 99) / P(Whole(baseline), 99);
        text.AppendLine($"  pod start p99, last wave over the 10 pods: berth {Flat(b, b.Ten):F2}, containerd {Flat(c, c.Ten):F2}; " +
            $"last wave over the first (both {ScaleBenchmark.Wave} at once): berth {Flat(b, b.Waves[0]):F2}, containerd {Flat(c, c.Waves[0]):F2}");

        static string Cpu(WaveCpu w) => $"{w.Machine:F0} ms ({w.Daemon:F0})";
        text.AppendLine($"  CPU per pod start, the machine's (the daemon's): first wave berth {Cpu(b.Cpu[0])}, containerd {Cpu(c.Cpu[0])}; " +
            $"last wave berth {Cpu(b.Cpu[^1])}, containerd {Cpu(c.Cpu[^1])}");

        Profiles(text, b, c);

        text.AppendLine($"  the node's mount table (lines of the benchmark's /proc/self/mountinfo): berth {b.Memory[0].Mounts} with no pods, {b.Memory[^1].Mounts} with {b.Memory[^1].Pods} " +
            $"({(b.Memory[^1].Mounts - b.Memory[0].Mounts) / (double)b.Memory[^1].Pods:F1} per pod); containerd {c.Memory[0].Mounts}, {c.Memory[^1].Mounts} ({(c.Memory[^1].Mounts - c.Memory[0].Mounts) / (double)c.Memory[^1].Pods:F1} per pod)");

        var points = new[] { b.Memory[0], Nearest(b.Memory, 100), b.Memory[^1] }.Select(m => m.Pods).ToArray();
        text.AppendLine();
        text.AppendLine($"Memory with {string.Join(", ", points)} pods (MiB: the daemon's RSS, the PSS of shims and of infra processes, counts in brackets):");
        text.AppendLine($"                       berth {string.Join("", points.Select(p => $"{p,13}"))} | containerd {string.Join("", points.Select(p => $"{p,13}"))}");
        Memory(text, "daemon RSS", b, c, points, m => (m.DaemonRss, null));
        Memory(text, "shims PSS", b, c, points, m => (m.ShimsPss, m.Shims));
        Memory(text, "infra PSS", b, c, points, m => (m.InfraPss, m.Infra));
        Memory(text, "total", b, c, points, m => (m.Total, null));
        double PerPod(ScaleResult r) => (r.Memory[^1].Total - r.Memory[0].Total) / r.Memory[^1].Pods;
        text.AppendLine($"  per pod above the empty node: berth {PerPod(b):F2}, containerd {PerPod(c):F2}, ratio {PerPod(b) / PerPod(c):F2}; " +
            $"daemon RSS at {points[^1]} pods, ratio {b.Memory[^1].DaemonRss / c.Memory[^1].DaemonRss:F2}");

        text.AppendLine();
        text.AppendLine($"Read paths with {pods} pods and {pods * 2} containers while a second client starts and removes pods (ms; berth churned {b.ChurnCycles} pods, containerd {c.ChurnCycles}):");
        text.AppendLine("                                             berth p50    p99 | containerd p50    p99 | ratio p99 | calls timed, failed/made (3 untimed first): berth; containerd");
        foreach (var (br, cr) in b.Reads.Zip(c.Reads))
            text.AppendLine($"  {br.Name,-40}{P(br.Times, 50),9:F1} {P(br.Times, 99),6:F1} |  {P(cr.Times, 50),13:F1} {P(cr.Times, 99),6:F1} | {P(br.Times, 99) / P(cr.Times, 99),9:F2} | {br.Times.Count}, {br.Failed}/{br.Times.Count + 3}; {cr.Times.Count}, {cr.Failed}/{cr.Times.Count + 3}");
        return text.ToString().TrimEnd();
    }

    public static void Plot(ScaleResult b, ScaleResult c, string directory)
    {
        (string, double[], double[]) Wave(string label, ScaleResult r, int percentile) =>
            (label, [.. r.Waves.Select((_, w) => (w + 1.0) * ScaleBenchmark.Wave)], [.. r.Waves.Select(w => P(Whole(w), percentile))]);
        BenchPlot.Lines(Path.Combine(directory, "scale-latency.png"), $"Pod start, RunPodSandbox to the last StartContainer, {ScaleBenchmark.Wave} pods at once",
            "pods on the node after the wave", "ms",
            [Wave("berth p50", b, 50), Wave("berth p99", b, 99), Wave("containerd p50", c, 50), Wave("containerd p99", c, 99)]);

        (string, double[], double[]) Mem(string label, ScaleResult r, Func<MemorySample, double> value) =>
            (label, [.. r.Memory.Select(m => (double)m.Pods)], [.. r.Memory.Select(value)]);
        BenchPlot.Lines(Path.Combine(directory, "scale-memory.png"), "Runtime memory: daemon RSS + PSS of shims and infra processes",
            "pods on the node", "MiB",
            [Mem("berth total", b, m => m.Total), Mem("berthd RSS", b, m => m.DaemonRss), Mem("containerd total", c, m => m.Total), Mem("containerd RSS", c, m => m.DaemonRss)]);

        BenchPlot.LogBars(Path.Combine(directory, "scale-reads.png"), $"Read paths at {b.Memory[^1].Pods} pods during pod churn, p99", "ms (log scale)",
            [.. b.Reads.Select(r => r.Name)],
            [("berth", [.. b.Reads.Select(r => P(r.Times, 99))]), ("containerd", [.. c.Reads.Select(r => P(r.Times, 99))])]);
    }

    private static void Starts(StringBuilder text, string label, ScaleResult b, ScaleResult c, Func<PodStart, IEnumerable<double>> times)
    {
        var last = b.Waves.Count * ScaleBenchmark.Wave;
        var rows = new (string Name, Func<ScaleResult, IEnumerable<PodStart>> Pods)[]
        {
            ("10 pods", r => r.Ten),
            ($"first wave (1-{ScaleBenchmark.Wave})", r => r.Waves[0]),
            ($"last wave ({last - ScaleBenchmark.Wave + 1}-{last})", r => r.Waves[^1]),
            ($"all {last}", r => r.All),
        };
        foreach (var (name, pods) in rows)
        {
            var bt = pods(b).SelectMany(times).ToList();
            var ct = pods(c).SelectMany(times).ToList();
            var first = name == rows[0].Name ? label : "";
            text.AppendLine($"  {first,-22}{name,-20}{P(bt, 50),7:F1} {P(bt, 99),6:F1} |  {P(ct, 50),13:F1} {P(ct, 99),6:F1} | {P(bt, 50) / P(ct, 50):F2}");
        }
    }

    /// <summary>The perf breakdown of the machine's CPU per pod start in the 10-pod start and the first and last waves.</summary>
    private static void Profiles(StringBuilder text, ScaleResult b, ScaleResult c)
    {
        static string Group(string part) => part.StartsWith("other (", StringComparison.Ordinal) ? "other" : part;
        static double Cell(CpuBreakdown p, string group, bool kernelOnly) =>
            p.Parts.Where(x => Group(x.Key) == group).Sum(x => kernelOnly ? x.Value.Kernel : x.Value.User + x.Value.Kernel);
        var groups = b.Profiles.Concat(c.Profiles).SelectMany(p => p.Parts.Keys).Select(Group).Distinct()
            .OrderByDescending(g => b.Profiles.Concat(c.Profiles).Sum(p => Cell(p, g, false))).ToList();
        text.AppendLine();
        text.AppendLine("CPU per pod start by part of the node, from perf's samples of every CPU (ms; in brackets the part of it in the kernel):");
        text.AppendLine("                              berth 10 pods    first wave     last wave | containerd 10 pods    first wave     last wave");
        string Row(ScaleResult r, Func<CpuBreakdown, string> cell) => string.Concat(r.Profiles.Select(p => $"{cell(p),14}"));
        foreach (var group in groups)
        {
            string Cells(CpuBreakdown p) => $"{Cell(p, group, false):F1} ({Cell(p, group, true):F1})";
            text.AppendLine($"  {group,-26}{Row(b, Cells)} |    {Row(c, Cells)}");
        }
        text.AppendLine($"  {"total",-26}{Row(b, p => $"{p.Total:F1}")} |    {Row(c, p => $"{p.Total:F1}")}");
        foreach (var (name, r) in new[] { ("berth", b), ("containerd", c) })
        {
            text.AppendLine($"  kernel functions that took most, {name}'s last wave (ms per pod): {string.Join(", ", r.Profiles[^1].KernelTop.Select(k => $"{k.Symbol} {k.Ms:F1}"))}");
            foreach (var part in new[] { "OCI runtime (runc/crun)", "shims", "daemon" })
            {
                if (r.Profiles[^1].KernelTopByPart.TryGetValue(part, out var top))
                    text.AppendLine($"    in {part}: {string.Join(", ", top.Select(k => $"{k.Symbol} {k.Ms:F1}"))}");
            }
        }
        var others = b.Profiles.Concat(c.Profiles).SelectMany(p => p.Parts).Where(x => Group(x.Key) == "other")
            .GroupBy(x => x.Key).OrderByDescending(g => g.Sum(x => x.Value.User + x.Value.Kernel)).Take(5).Select(g => g.Key[7..^1]);
        text.AppendLine($"  other is mostly: {string.Join(", ", others)}");
    }

    private static void Memory(StringBuilder text, string label, ScaleResult b, ScaleResult c, int[] points, Func<MemorySample, (double MiB, int? Count)> value)
    {
        string Cells(ScaleResult r) => string.Concat(points.Select(p => r.Memory.First(m => m.Pods == p)).Select(value).Select(v =>
            v.Count is { } count ? $"{$"{v.MiB:F1} ({count})",13}" : $"{v.MiB,13:F1}"));
        text.AppendLine($"  {label,-26}{Cells(b)} |           {Cells(c)}");
    }

    private static MemorySample Nearest(IReadOnlyList<MemorySample> samples, int pods) => samples.MinBy(m => Math.Abs(m.Pods - pods))!;

    private static List<double> Whole(IEnumerable<PodStart> pods) => [.. pods.Select(p => p.Whole)];

    private static double P(IReadOnlyCollection<double> values, int percentile) => Percentile.Of(values, percentile);
}
