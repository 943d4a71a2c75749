using Berth.Runtime.Spec;
using Tmds.Linux;

namespace Berth.Runtime;

/// <summary>What the node offers containers, read once at startup: the cgroup version, swap accounting, its devices.</summary>
public static unsafe class NodeProbe
{
    public static bool CgroupV2 => File.Exists("/sys/fs/cgroup/cgroup.controllers");

    /// <summary>systemd is PID 1 (sd_booted(3): its runtime directory exists).</summary>
    public static bool SystemdRunning => Directory.Exists("/run/systemd/system");

    /// <summary>
    /// Whether the memory controller accounts swap. v2 has no memory.swap.max in the root cgroup, so it is looked
    /// for in berthd's own cgroup, or, when berthd runs in the root, in any child the memory controller reaches.
    /// </summary>
    public static bool SwapAccounting
    {
        get
        {
            if (!CgroupV2) return File.Exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
            var own = Berth.Native.ProcFs.CgroupV2Of(Environment.ProcessId);
            if (own is not (null or "/")) return File.Exists($"/sys/fs/cgroup{own}/memory.swap.max");
            if (Directory.EnumerateDirectories("/sys/fs/cgroup").Any(d => File.Exists(Path.Combine(d, "memory.swap.max")))) return true;
            return ProbeChildCgroupHasSwap();
        }
    }

    /// <summary>With no child cgroup to look at, one made for a moment, where the root hands children the memory controller.</summary>
    private static bool ProbeChildCgroupHasSwap()
    {
        if (!File.ReadAllText("/sys/fs/cgroup/cgroup.subtree_control").Split(' ', '\n').Contains("memory")) return false;
        var probe = $"/sys/fs/cgroup/berth-swap-probe-{Environment.ProcessId}";
        try
        {
            Directory.CreateDirectory(probe);
            return File.Exists(Path.Combine(probe, "memory.swap.max"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        finally
        {
            if (Directory.Exists(probe)) Directory.Delete(probe);
        }
    }

    /// <summary>Whether the kernel runs AppArmor (the module is in and enabled).</summary>
    public static bool AppArmorEnabled =>
        File.Exists("/sys/module/apparmor/parameters/enabled")
        && File.ReadAllText("/sys/module/apparmor/parameters/enabled").StartsWith('Y')
        && Directory.Exists("/sys/kernel/security/apparmor");

    /// <summary>Whether an AppArmor profile of that name is loaded, from the kernel's list ("name (mode)" a line).</summary>
    public static bool AppArmorProfileLoaded(string name) =>
        ProfileListed(File.ReadLines("/sys/kernel/security/apparmor/profiles"), name);

    public static bool ProfileListed(IEnumerable<string> profiles, string name) =>
        profiles.Any(line => line.StartsWith(name, StringComparison.Ordinal) && line.AsSpan(name.Length).StartsWith(" ("));

    /// <summary>Whether the kernel has mount_setattr(2), which came in Linux 5.12.</summary>
    /// <summary>A kernel list file such as <c>/sys/devices/system/cpu/online</c> ("0-3"), or null when absent or unreadable.</summary>
    public static IReadOnlySet<int>? OnlineList(string path)
    {
        try
        {
            return Spec.OciSpecBuilder.ParseCpuset(File.ReadAllText(path).Trim());
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Whether the filesystem of a directory takes idmapped mounts with the maps of the given user namespace.</summary>
    public static bool IdmappedMounts(string directory, string userNamespacePath) => Containers.IdmappedMount.IsSupported(directory, userNamespacePath);

    public static bool MountSetattr => KernelAtLeast(File.ReadAllText("/proc/sys/kernel/osrelease"), 5, 12);

    /// <summary>Compares the leading "major.minor" of a kernel release such as "6.1.0-18-amd64".</summary>
    public static bool KernelAtLeast(string release, int major, int minor)
    {
        var parts = release.Trim().Split('.', 3);
        if (parts.Length < 2 || !int.TryParse(parts[0], out var haveMajor)) return false;
        var digits = parts[1].AsSpan();
        var end = 0;
        while (end < digits.Length && char.IsAsciiDigit(digits[end])) end++;
        if (!int.TryParse(digits[..end], out var haveMinor)) return false;
        return haveMajor > major || (haveMajor == major && haveMinor >= minor);
    }

    /// <summary>berthd's capability bounding set (CapBnd in /proc/self/status).</summary>
    public static ulong? BoundingCapabilities()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapBnd:", StringComparison.Ordinal));
        return line is not null && ulong.TryParse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var bits)
            ? bits
            : null;
    }

    /// <summary>The device nodes under /dev (not its pseudo-filesystems), which privileged containers get.</summary>
    public static IReadOnlyList<ContainerDevice> HostDevices()
    {
        var devices = new List<ContainerDevice>();
        Walk("/dev", devices);
        return devices;
    }

    private static void Walk(string directory, List<ContainerDevice> devices)
    {
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateFileSystemEntries(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var path in entries)
        {
            if (path is "/dev/pts" or "/dev/shm" or "/dev/mqueue" or "/dev/hugepages" or "/dev/console") continue;
            if (Stat(path) is not { } st) continue;
            var type = st.st_mode & LibC.S_IFMT;
            if (type == LibC.S_IFDIR) Walk(path, devices);
            else if (type == LibC.S_IFCHR || type == LibC.S_IFBLK)
            {
                devices.Add(new ContainerDevice
                {
                    ContainerPath = path,
                    HostPath = path,
                    Type = type == LibC.S_IFCHR ? 'c' : 'b',
                    Major = (long)Major(st.st_rdev),
                    Minor = (long)Minor(st.st_rdev),
                    FileMode = (uint)st.st_mode & 0xFFF,
                });
            }
        }
    }

    /// <summary>A CRI device's host node, or null when it is missing or not a device.</summary>
    public static ContainerDevice? Device(string hostPath, string containerPath, string permissions)
    {
        if (Stat(hostPath) is not { } st) return null;
        var type = st.st_mode & LibC.S_IFMT;
        if (type != LibC.S_IFCHR && type != LibC.S_IFBLK) return null;
        return new ContainerDevice
        {
            ContainerPath = containerPath,
            HostPath = hostPath,
            Type = type == LibC.S_IFCHR ? 'c' : 'b',
            Major = (long)Major(st.st_rdev),
            Minor = (long)Minor(st.st_rdev),
            FileMode = (uint)st.st_mode & 0xFFF,
            Permissions = permissions,
        };
    }

    private static stat? Stat(string path) => Lstat(path, out _);

    /// <summary>lstat(2), not following links (/dev has many, and their targets are listed themselves); null with the errno on failure.</summary>
    internal static stat? Lstat(string path, out int error)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        stat st;
        error = 0;
        fixed (byte* p = bytes)
        {
            if (LibC.lstat(p, &st) != 0)
            {
                error = LibC.errno;
                return null;
            }
        }
        return st;
    }

    /// <summary>glibc's major() and minor(): the 12+20 bit split of a 64-bit dev_t.</summary>
    internal static ulong Major(ulong dev) => ((dev >> 32) & 0xfffff000) | ((dev >> 8) & 0xfff);

    internal static ulong Minor(ulong dev) => ((dev >> 12) & 0xffffff00) | (dev & 0xff);
}
