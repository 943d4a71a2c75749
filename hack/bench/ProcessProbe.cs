using System.Globalization;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>What /proc says about the benchmark's processes: memory, open files, threads, and which ones run.</summary>
internal static class ProcessProbe
{
    /// <summary>Resident set size in MiB.</summary>
    public static double RssMiB(int pid) => KiBField($"/proc/{pid}/status", "VmRSS:") / 1024.0;

    /// <summary>Proportional set size in MiB: shared pages of a binary and libc divided among the processes sharing them.</summary>
    public static double PssMiB(int pid) => KiBField($"/proc/{pid}/smaps_rollup", "Pss:") / 1024.0;

    /// <summary>The summed PSS of <paramref name="pids"/> that still run.</summary>
    public static double PssMiB(IEnumerable<int> pids) => pids.Sum(pid => TryRead(() => PssMiB(pid)));

    public static int Threads(int pid) => (int)KiBField($"/proc/{pid}/status", "Threads:");

    public static int OpenFiles(int pid) => Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Count();

    /// <summary>The parent's PID, or 0 once the process is gone.</summary>
    public static int Parent(int pid)
    {
        try
        {
            // The command name in parentheses may hold spaces; the fields after it are fixed.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>CPU time the process has used, user and system (ms).</summary>
    public static double CpuMs(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name and state.
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * 1000.0 / ClockTicks;
    }

    /// <summary>CPU time the whole machine has spent busy, all cores (ms): every state of /proc/stat's cpu line but idle and iowait.</summary>
    public static double MachineBusyMs()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..].Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        return (fields.Sum() - fields[3] - fields[4]) * 1000.0 / ClockTicks;
    }

    // USER_HZ, which Linux fixes at 100 on x86_64 for /proc's tick counts.
    private const double ClockTicks = 100;

    /// <summary>Processes whose whole command line matches <paramref name="pattern"/> (pgrep -f).</summary>
    public static int[] Find(string pattern) =>
        Host.Run("pgrep", "-f", pattern) is { ExitCode: 0 } found
            ? [.. found.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture))]
            : [];

    private static long KiBField(string file, string field)
    {
        var line = File.ReadLines(file).First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    // A process may exit between pgrep and the read.
    private static double TryRead(Func<double> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }
}
