using System.Diagnostics;
using System.Globalization;

namespace Berth.Bench;

/// <summary>
/// Where the machine's CPU went while a wave of pods started: `perf record` samples every CPU (cpu-clock, so it works in
/// a VM without hardware counters), and each busy sample is charged to a part of the node by its process.
/// </summary>
internal sealed class CpuProfile
{
    /// <summary>Samples per second per CPU: one sample is 4 ms of CPU time.</summary>
    private const int Frequency = 250;

    private readonly Process perf;
    private readonly string file;

    private CpuProfile(Process perf, string file) => (this.perf, this.file) = (perf, file);

    public static CpuProfile Start(string file)
    {
        var info = new ProcessStartInfo("perf") { UseShellExecute = false, RedirectStandardError = true };
        foreach (var arg in new[] { "record", "-e", "cpu-clock", "-F", $"{Frequency}", "-a", "--quiet", "-o", file }) info.ArgumentList.Add(arg);
        var perf = Process.Start(info) ?? throw new InvalidOperationException("perf did not start");
        // perf opens its counters before it samples; a wave started at once would lose its first milliseconds.
        Thread.Sleep(300);
        return new CpuProfile(perf, file);
    }

    /// <summary>Stops sampling and charges each sample; <paramref name="partOf"/> names the part of a live process by PID, or null.</summary>
    public async Task<CpuBreakdown> StopAsync(Func<int, string?> partOf, int pods)
    {
        // perf writes its file out on SIGINT, and exits 130 for it.
        Berth.E2E.Tests.Fixtures.Host.Run("kill", "-INT", perf.Id.ToString(CultureInfo.InvariantCulture));
        var errors = await perf.StandardError.ReadToEndAsync();
        await perf.WaitForExitAsync();
        if (perf.ExitCode is not (0 or 130) || !File.Exists(file)) throw new InvalidOperationException($"perf record failed ({perf.ExitCode}): {errors}");
        var script = new ProcessStartInfo("perf") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "script", "-i", file, "-F", "pid,comm,ip,sym" }) script.ArgumentList.Add(arg);
        using var reader = Process.Start(script)!;
        var drain = reader.StandardError.ReadToEndAsync();
        var parts = new Dictionary<string, (int User, int Kernel)>();
        var kernelSymbols = new Dictionary<(string Part, string Symbol), int>();
        var known = new Dictionary<int, string>();
        while (await reader.StandardOutput.ReadLineAsync() is { } line)
        {
            // "comm pid ip sym": comm may hold spaces, so the fields are taken from the right.
            var fields = line.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 3) continue;
            var ipIndex = Array.FindLastIndex(fields, f => f.Length >= 8 && ulong.TryParse(f, NumberStyles.HexNumber, null, out _));
            if (ipIndex < 2) continue;
            var pid = int.Parse(fields[ipIndex - 1], CultureInfo.InvariantCulture);
            var comm = string.Join(' ', fields[..(ipIndex - 1)]);
            if (pid == 0) continue; // the idle task: not busy
            var kernel = fields[ipIndex].StartsWith("ffff", StringComparison.Ordinal);
            if (!known.TryGetValue(pid, out var part)) known[pid] = part = partOf(pid) ?? PartByName(comm);
            var (user, kern) = parts.GetValueOrDefault(part);
            parts[part] = kernel ? (user, kern + 1) : (user + 1, kern);
            if (kernel && ipIndex + 1 < fields.Length) kernelSymbols[(part, fields[ipIndex + 1])] = kernelSymbols.GetValueOrDefault((part, fields[ipIndex + 1])) + 1;
        }
        await reader.WaitForExitAsync();
        _ = await drain;
        File.Delete(file);
        const double msPerSample = 1000.0 / Frequency;
        return new CpuBreakdown(
            parts.ToDictionary(p => p.Key, p => (p.Value.User * msPerSample / pods, p.Value.Kernel * msPerSample / pods)),
            [.. kernelSymbols.GroupBy(s => s.Key.Symbol).Select(g => (Symbol: g.Key, Samples: g.Sum(s => s.Value))).OrderByDescending(s => s.Samples).Take(6)
                .Select(s => (s.Symbol, s.Samples * msPerSample / pods))],
            kernelSymbols.GroupBy(s => s.Key.Part).ToDictionary(g => g.Key, g => (IReadOnlyList<(string, double)>)
                [.. g.OrderByDescending(s => s.Value).Take(3).Select(s => (s.Key.Symbol, s.Value * msPerSample / pods))]));
    }

    /// <summary>A process that is gone (or never was the benchmark's) by its command name.</summary>
    private static string PartByName(string comm) => comm switch
    {
        _ when comm.StartsWith("runc", StringComparison.Ordinal) || comm == "crun" => "OCI runtime (runc/crun)",
        "bridge" or "host-local" or "loopback" or "portmap" or "firewall" or "bandwidth" => "CNI plugins",
        "sleep" => "containers and pause",
        _ when comm.StartsWith("kworker", StringComparison.Ordinal) || comm.StartsWith("ksoftirqd", StringComparison.Ordinal)
               || comm.StartsWith("rcu", StringComparison.Ordinal) || comm.StartsWith("migration", StringComparison.Ordinal) => "kernel threads",
        "perf" => "perf (the profiler)",
        _ => $"other ({comm})",
    };
}

/// <summary>CPU per pod start by part of the node (ms, user and kernel mode), and the kernel functions that took most.</summary>
internal sealed record CpuBreakdown(
    IReadOnlyDictionary<string, (double User, double Kernel)> Parts, IReadOnlyList<(string Symbol, double Ms)> KernelTop,
    IReadOnlyDictionary<string, IReadOnlyList<(string Symbol, double Ms)>> KernelTopByPart)
{
    public double Total => Parts.Values.Sum(p => p.User + p.Kernel);
}
