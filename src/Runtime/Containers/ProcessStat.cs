using System.Globalization;

namespace Berth.Runtime.Containers;

/// <summary>/proc/PID/stat, read to tell a live process from a zombie or from a later one that reused its PID.</summary>
internal static class ProcessStat
{
    public static bool IsAlive(ShimProcess process) => StartTimeOf(process.Pid) == process.StartTime;

    public static bool IsAlive(int pid) => StartTimeOf(pid) is not null;

    public static ulong? StartTimeOf(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // The state is the field after the command's closing parenthesis, the start time the 20th after it.
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return fields[0][0] == 'Z' ? null : ulong.Parse(fields[19], CultureInfo.InvariantCulture);
    }

    public static void Kill(int pid) => _ = Tmds.Linux.LibC.kill(pid, Tmds.Linux.LibC.SIGKILL);
}
