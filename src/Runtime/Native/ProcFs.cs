using System.Globalization;

namespace Berth.Native;

/// <summary>
/// What berthd reads of other processes in /proc: whether one still runs (by start time, so a reused PID is never
/// mistaken for it) and which processes a command line names. One source, compiled into the runtime and the sandbox.
/// </summary>
internal static class ProcFs
{
    /// <summary>The process's start time in clock ticks since boot; null when it is gone or a zombie (dead, waiting to be reaped).</summary>
    public static ulong? StartTimeOf(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // The state is the field after the command's closing parenthesis, the start time the 20th after it.
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return fields[0][0] == 'Z' ? null : ulong.Parse(fields[19], CultureInfo.InvariantCulture);
    }

    public static bool IsRunning(int pid) => StartTimeOf(pid) is not null;

    /// <summary>
    /// Whether the kernel drops <paramref name="signal"/> sent to the process from an ancestor PID namespace: it is PID 1
    /// of its own namespace (the last <c>NSpid</c>) and has no handler for the signal (<c>SigCgt</c>); SIGKILL and SIGSTOP
    /// always arrive. False when the process is gone.
    /// </summary>
    public static bool DropsSignalAsNamespaceInit(int pid, int signal)
    {
        if (signal is 9 or 19 or < 1 or > 64) return false;
        string[] lines;
        try
        {
            lines = File.ReadAllLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        var namespaceInit = false;
        ulong caught = 0;
        foreach (var line in lines)
        {
            if (line.StartsWith("NSpid:", StringComparison.Ordinal))
                namespaceInit = line.AsSpan(line.LastIndexOfAny(['\t', ' ']) + 1).SequenceEqual("1");
            else if (line.StartsWith("SigCgt:", StringComparison.Ordinal))
                caught = ulong.Parse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }
        return namespaceInit && (caught & (1UL << (signal - 1))) == 0;
    }

    /// <summary>The process's cgroup v2 directory below the root (the <c>0::</c> line of /proc/PID/cgroup); null when gone.</summary>
    public static string? CgroupV2Of(int pid)
    {
        try
        {
            return File.ReadLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cgroup")
                .FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Processes whose /proc/PID/cmdline (arguments, each NUL-terminated) starts with <paramref name="prefix"/>.</summary>
    public static List<int> FindByCmdline(ReadOnlySpan<byte> prefix)
    {
        var found = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            try
            {
                if (File.ReadAllBytes(Path.Combine(directory, "cmdline")).AsSpan().StartsWith(prefix)) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // It exited while we looked.
            }
        }
        return found;
    }

    public static void Kill(int pid) => _ = Tmds.Linux.LibC.kill(pid, Tmds.Linux.LibC.SIGKILL);
}
