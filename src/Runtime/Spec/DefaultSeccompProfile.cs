namespace Berth.Runtime.Spec;

/// <summary>
/// Berth's RuntimeDefault seccomp profile. It allows by default and refuses (EPERM) the syscalls that let a
/// process reach past its container: kernel modules and kexec, the kernel keyring, BPF and perf, mounts and
/// namespaces, tracing other processes, the clock, swap, reboot, accounting, and obsolete or rarely needed
/// interfaces with a history of kernel bugs. A group is allowed again when the container holds the capability
/// that the syscalls need anyway, so adding that capability works as users expect.
/// Listing x86, x32 and x86-64 makes the rules apply to all three ABIs of the host.
/// </summary>
internal static class DefaultSeccompProfile
{
    private const uint Eperm = 1;

    /// <summary>Refused syscalls, each group allowed by the capability that names it (null: never allowed).</summary>
    private static readonly (string? Capability, string[] Syscalls)[] Groups =
    [
        (null, ["kexec_file_load", "kexec_load", "create_module", "get_kernel_syms", "query_module", "nfsservctl",
                "uselib", "ustat", "sysfs", "_sysctl", "vm86", "vm86old", "lookup_dcookie", "userfaultfd"]),
        ("CAP_SYS_MODULE", ["init_module", "finit_module", "delete_module"]),
        ("CAP_SYS_ADMIN", ["add_key", "request_key", "keyctl", "mount", "umount", "umount2", "pivot_root", "unshare",
                           "setns", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
                           "quotactl", "quotactl_fd", "name_to_handle_at", "swapon", "swapoff", "setdomainname",
                           "sethostname", "fanotify_init", "open_by_handle_at"]),
        ("CAP_BPF", ["bpf"]),
        ("CAP_PERFMON", ["perf_event_open"]),
        ("CAP_SYS_PTRACE", ["ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "process_madvise"]),
        ("CAP_SYS_TIME", ["settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64"]),
        ("CAP_SYS_BOOT", ["reboot"]),
        ("CAP_SYS_PACCT", ["acct"]),
        ("CAP_SYS_RAWIO", ["iopl", "ioperm"]),
        ("CAP_SYS_NICE", ["mbind", "set_mempolicy", "move_pages", "migrate_pages"]),
        ("CAP_SYSLOG", ["syslog"]),
        ("CAP_SYS_TTY_CONFIG", ["vhangup"]),
    ];

    public static OciSeccomp Build(IReadOnlyCollection<string> capabilities)
    {
        var refused = Groups
            .Where(g => g.Capability is null || !capabilities.Contains(g.Capability))
            .SelectMany(g => g.Syscalls)
            .Order(StringComparer.Ordinal)
            .ToList();
        return new OciSeccomp
        {
            DefaultAction = "SCMP_ACT_ALLOW",
            Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            Syscalls = [new OciSyscall { Names = refused, Action = "SCMP_ACT_ERRNO", ErrnoRet = Eperm }],
        };
    }
}
