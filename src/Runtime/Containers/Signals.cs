using System.Globalization;

namespace Berth.Runtime.Containers;

/// <summary>
/// Linux signal names as images (<c>STOPSIGNAL</c>) and CRI's <c>Signal</c> enum spell them, to numbers and back. runc
/// and crun know the classic names but not the real-time ones, so those reach the runtime as numbers.
/// </summary>
public static class Signals
{
    public const int Kill = 9;
    public const int Stop = 19;
    private const int RealTimeMin = 34;
    private const int RealTimeMax = 64;

    private static readonly Dictionary<string, int> Classic = new(StringComparer.OrdinalIgnoreCase)
    {
        ["HUP"] = 1, ["INT"] = 2, ["QUIT"] = 3, ["ILL"] = 4, ["TRAP"] = 5, ["ABRT"] = 6, ["IOT"] = 6, ["BUS"] = 7,
        ["FPE"] = 8, ["KILL"] = 9, ["USR1"] = 10, ["SEGV"] = 11, ["USR2"] = 12, ["PIPE"] = 13, ["ALRM"] = 14,
        ["TERM"] = 15, ["STKFLT"] = 16, ["CHLD"] = 17, ["CLD"] = 17, ["CONT"] = 18, ["STOP"] = 19, ["TSTP"] = 20,
        ["TTIN"] = 21, ["TTOU"] = 22, ["URG"] = 23, ["XCPU"] = 24, ["XFSZ"] = 25, ["VTALRM"] = 26, ["PROF"] = 27,
        ["WINCH"] = 28, ["IO"] = 29, ["POLL"] = 29, ["PWR"] = 30, ["SYS"] = 31,
    };

    /// <summary>
    /// "SIGTERM", "TERM", "15", "SIGRTMIN+3" (and CRI's "SIGRTMINPLUS3"), "RTMAX-1" (and "SIGRTMAXMINUS1"); case does not
    /// matter. False for anything that names no signal of 1 to 64.
    /// </summary>
    public static bool TryParse(string text, out int signal)
    {
        signal = 0;
        var name = text.Trim();
        if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            signal = number;
            return number is >= 1 and <= RealTimeMax;
        }
        if (name.StartsWith("SIG", StringComparison.OrdinalIgnoreCase)) name = name[3..];
        if (Classic.TryGetValue(name, out signal)) return true;
        return TryRealTime(name, "RTMIN", RealTimeMin, +1, out signal) || TryRealTime(name, "RTMAX", RealTimeMax, -1, out signal);
    }

    private static bool TryRealTime(string name, string bas, int origin, int direction, out int signal)
    {
        signal = 0;
        if (!name.StartsWith(bas, StringComparison.OrdinalIgnoreCase)) return false;
        var rest = name.AsSpan(bas.Length);
        if (rest.IsEmpty)
        {
            signal = origin;
            return true;
        }
        var sign = direction > 0 ? "+" : "-";
        var word = direction > 0 ? "PLUS" : "MINUS";
        if (rest.StartsWith(sign, StringComparison.Ordinal)) rest = rest[1..];
        else if (rest.StartsWith(word, StringComparison.OrdinalIgnoreCase)) rest = rest[word.Length..];
        else return false;
        if (!int.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out var offset) || offset > RealTimeMax - RealTimeMin) return false;
        signal = origin + direction * offset;
        return true;
    }

    /// <summary>What the OCI runtime's kill takes for the signal: its classic name, or the number of a real-time one.</summary>
    public static string RuntimeArgument(int signal) =>
        Classic.FirstOrDefault(c => c.Value == signal && c.Key is not ("IOT" or "CLD" or "POLL")).Key is { } name
            ? "SIG" + name
            : signal.ToString(CultureInfo.InvariantCulture);
}
