namespace Berth.Cgroups;

/// <summary>
/// The OOM counts of a cgroup: <c>oom</c> (the limit was hit and the OOM killer ran) and <c>oom_kill</c> (processes it
/// killed), as cgroup v2's <c>memory.events</c> and v1's <c>memory.oom_control</c> give them. One parser, compiled into
/// berthd and berth-shim, which both read the file.
/// </summary>
internal readonly record struct MemoryEvents(long Oom, long OomKill)
{
    /// <summary>The cgroup v2 file, below a cgroup's directory.</summary>
    public const string V2File = "memory.events";

    /// <summary>Lines of "key value"; keys other than the two are skipped, and a missing one counts zero.</summary>
    public static MemoryEvents Parse(ReadOnlySpan<byte> text)
    {
        long oom = 0, oomKill = 0;
        foreach (var range in text.Split((byte)'\n'))
        {
            var line = text[range];
            var space = line.IndexOf((byte)' ');
            if (space < 0) continue;
            var key = line[..space];
            if (!long.TryParse(line[(space + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)) continue;
            if (key.SequenceEqual("oom"u8)) oom = value;
            else if (key.SequenceEqual("oom_kill"u8)) oomKill = value;
        }
        return new MemoryEvents(oom, oomKill);
    }
}
