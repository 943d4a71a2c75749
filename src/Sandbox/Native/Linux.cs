using System.Runtime.InteropServices;

namespace Berth.Sandbox.Native;

/// <summary>Namespace, mount and interface syscalls, bound with LibraryImport (AOT-safe). Linux x86-64 values.</summary>
internal static unsafe partial class Linux
{
    public const int CloneNewUts = 0x04000000, CloneNewIpc = 0x08000000, CloneNewUser = 0x10000000, CloneNewPid = 0x20000000, CloneNewNet = 0x40000000;
    public const ulong MsNoSuid = 2, MsNoDev = 4, MsNoExec = 8, MsBind = 4096;
    public const int MntDetach = 2;
    public const int AfInet = 2, SockDgram = 2, SockCloexec = 0x80000;
    public const ulong SiocGifFlags = 0x8913, SiocSifFlags = 0x8914;
    public const short IffUp = 0x1;

    public static int LastError => Marshal.GetLastPInvokeError();

    public static IOException Error(string call, string what, int error) =>
        new($"{call} {what}: {Marshal.GetPInvokeErrorMessage(error)} (errno {error})") { HResult = error };

    [LibraryImport("libc", EntryPoint = "unshare", SetLastError = true)]
    public static partial int Unshare(int flags);

    private const long SysSetresuid = 117;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3);

    /// <summary>setresuid(-1, uid, -1) for the calling thread alone (the syscall is per thread; glibc's wrapper is not).</summary>
    public static int SetThreadEffectiveUid(uint uid) => (int)Syscall(SysSetresuid, -1, uid, -1);

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Chown(string path, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(int fd, int nsType);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string? fsType, ulong flags, nint data);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fsType, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    /// <summary>f_type of statfs(2) for a namespace file (NSFS_MAGIC).</summary>
    public const long NsfsMagic = 0x6e736673;

    [LibraryImport("libc", EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatFsNative(string path, byte* buffer);

    /// <summary>The filesystem type of a path (struct statfs' first field), or null when it cannot be looked at.</summary>
    public static long? FilesystemType(string path)
    {
        var buffer = stackalloc byte[256]; // struct statfs is 120 bytes on x86-64
        return StatFsNative(path, buffer) == 0 ? *(long*)buffer : null;
    }

    [LibraryImport("libc", EntryPoint = "sethostname", SetLastError = true)]
    public static partial int SetHostname(byte* name, nuint length);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, void* argument);

    /// <summary>struct ifreq: a 16-byte name and a 24-byte union, of which only the flags are used here.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 40)]
    public struct IfReq
    {
        public fixed byte Name[16];
        public short Flags;
    }
}
