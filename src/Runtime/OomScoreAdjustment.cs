using System.Globalization;

namespace Berth.Runtime;

/// <summary>
/// oom_score_adj on restricted hosts. Some nodes (rootless and nested setups, and this project's CI) refuse a
/// negative value even to root, and runc then fails every such container with "can't get final child's PID from
/// pipe". With restrict_oom_score_adj on, as in containerd, values below berthd's own are raised to it.
/// </summary>
public static class OomScoreAdjustment
{
    private const string OwnPath = "/proc/self/oom_score_adj";

    public static int ReadOwn() => int.Parse(File.ReadAllText(OwnPath).Trim(), CultureInfo.InvariantCulture);

    /// <summary>
    /// Whether the host refuses to lower oom_score_adj below berthd's own to a negative value: berthd tries it on
    /// itself and puts its own value back (raising is always allowed).
    /// </summary>
    public static bool HostRefusesLowering()
    {
        var own = ReadOwn();
        var probe = Math.Max(-1000, Math.Min(own - 1, -1));
        if (probe >= own) return false;
        try
        {
            File.WriteAllText(OwnPath, probe.ToString(CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return true;
        }
        File.WriteAllText(OwnPath, own.ToString(CultureInfo.InvariantCulture));
        return false;
    }
}
