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
