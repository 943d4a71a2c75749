namespace Berth.Runtime.Spec;

/// <summary>Linux capability names, the default set a container gets, and CRI's add/drop arithmetic.</summary>
internal static class Capabilities
{
    /// <summary>Every capability up to CAP_CHECKPOINT_RESTORE (40), in number order.</summary>
    public static readonly string[] All =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
        "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>What containerd and CRI-O give an unprivileged container (Docker's historical default).</summary>
    public static readonly string[] Default =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    /// <summary>
    /// CRI's rules: "ALL" in drop empties the set before adds; "ALL" in add grants everything (and drops then apply).
    /// Names may come with or without the CAP_ prefix, in any case.
    /// </summary>
    public static List<string> Apply(IReadOnlyList<string> add, IReadOnlyList<string> drop)
    {
        var set = new HashSet<string>(Default, StringComparer.Ordinal);
        var dropsAll = drop.Any(IsAll);
        var addsAll = add.Any(IsAll);
        if (dropsAll) set.Clear();
        if (addsAll) set.UnionWith(All);
        foreach (var name in add.Where(n => !IsAll(n))) set.Add(Normalize(name, "capabilities.add_capabilities"));
        if (!dropsAll)
        {
            foreach (var name in drop.Where(n => !IsAll(n))) set.Remove(Normalize(name, "capabilities.drop_capabilities"));
        }
        return [.. All.Where(set.Contains)];
    }

    public static string Normalize(string name, string field)
    {
        var upper = name.Trim().ToUpperInvariant();
        var full = upper.StartsWith("CAP_", StringComparison.Ordinal) ? upper : "CAP_" + upper;
        return Array.IndexOf(All, full) >= 0 ? full : throw new ContainerSpecException($"{field}: unknown capability '{name}'");
    }

    private static bool IsAll(string name) => string.Equals(name.Trim(), "ALL", StringComparison.OrdinalIgnoreCase);
}
