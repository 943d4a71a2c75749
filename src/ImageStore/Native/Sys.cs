using System.Runtime.InteropServices;
using System.Text;

using static Berth.Native.Descriptors;

namespace Berth.ImageStore.Native;

/// <summary>
/// The *at() syscalls the unpacker needs, bound directly (LibraryImport, AOT-safe) with plain integer types.
/// Constants are Linux x86-64 and generic-ABI values.
/// </summary>
internal static unsafe partial class Sys
{
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtRemoveDir = 0x200;


    public const ulong ResolveNoXdev = 0x01, ResolveNoMagicLinks = 0x02, ResolveNoSymlinks = 0x04, ResolveBeneath = 0x08;

    public const uint SIfMt = 0xF000, SIfDir = 0x4000, SIfChr = 0x2000, SIfBlk = 0x6000, SIfIfo = 0x1000, SIfLnk = 0xA000, SIfReg = 0x8000;

    public const int ENoEnt = 2, EExist = 17, EXDev = 18, ENotDir = 20, ELoop = 40;

    private const long SysOpenat2 = 437;

    public static byte[] Utf8z(string text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }


    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int OpenAt(int dirFd, string path, int flags, uint mode);

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall4(long number, long a, nint b, nint c, long d);

    /// <summary>openat2(2): glibc 2.36 has no wrapper, so through syscall(2).</summary>
    public static int OpenAt2(int dirFd, string path, int flags, ulong resolve)
    {
        var how = new OpenHow { Flags = (ulong)flags, Resolve = resolve };
        var bytes = Utf8z(path);
        fixed (byte* p = bytes)
        {
            return (int)Syscall4(SysOpenat2, dirFd, (nint)p, (nint)(&how), sizeof(OpenHow));
        }
    }

    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MkdirAt(int dirFd, string path, uint mode);

    [LibraryImport("libc", EntryPoint = "mknodat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MknodAt(int dirFd, string path, uint mode, ulong device);

    [LibraryImport("libc", EntryPoint = "symlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SymlinkAt(string target, int dirFd, string linkPath);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int LinkAt(int oldDirFd, string oldPath, int newDirFd, string newPath, int flags);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int UnlinkAt(int dirFd, string path, int flags);

    [LibraryImport("libc", EntryPoint = "fchown", SetLastError = true)]
    public static partial int FChown(int fd, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "fchownat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FChownAt(int dirFd, string path, uint uid, uint gid, int flags);

    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    public static partial int FChmod(int fd, uint mode);

    [LibraryImport("libc", EntryPoint = "fchmodat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FChmodAt(int dirFd, string path, uint mode, int flags);

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "futimens", SetLastError = true)]
    public static partial int FUtimens(int fd, Timespec* times);

    [LibraryImport("libc", EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int UtimensAt(int dirFd, string path, Timespec* times, int flags);


    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int SyncFsNative(int fd);

    /// <summary>Flushes the whole filesystem holding <paramref name="path"/>: one call instead of an fsync per unpacked file.</summary>
    public static void SyncFilesystem(string path)
    {
        var fd = Open(path, ORdOnly | ODirectory | OCloExec, 0);
        if (fd < 0) throw Error("open", path, LastError);
        try
        {
            if (SyncFsNative(fd) != 0) throw Error("syncfs", path, LastError);
        }
        finally
        {
            _ = Close(fd);
        }
    }


    /// <summary>The file type bits (S_IFMT) of a name in a directory, not following a symlink; null if absent.</summary>
    public static uint? FileTypeAt(int dirFd, string name)
    {
        var bytes = Utf8z(name);
        Tmds.Linux.stat st;
        fixed (byte* p = bytes)
        {
            if (Tmds.Linux.LibC.fstatat(dirFd, p, &st, AtSymlinkNoFollow) != 0)
            {
                var error = Tmds.Linux.LibC.errno;
                if (error == ENoEnt) return null;
                throw Error("stat", name, error);
            }
        }
        return (uint)st.st_mode & SIfMt;
    }

    [LibraryImport("libc", EntryPoint = "fsetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int FSetXattrNative(int fd, string name, byte* value, nuint size, int flags);

    public static void FSetXattr(int fd, string name, ReadOnlySpan<byte> value, string pathForErrors)
    {
        fixed (byte* v = value)
        {
            if (FSetXattrNative(fd, name, v, (nuint)value.Length, 0) != 0)
                throw Error($"setxattr {name}", pathForErrors, LastError);
        }
    }

    [LibraryImport("libc", EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint LGetXattrNative(string path, string name, byte* value, nuint size);

    /// <summary>Reads an xattr without following a symlink; null when absent.</summary>
    public static byte[]? LGetXattr(string path, string name)
    {
        var buffer = new byte[4096];
        fixed (byte* b = buffer)
        {
            var length = LGetXattrNative(path, name, b, (nuint)buffer.Length);
            return length < 0 ? null : buffer[..(int)length];
        }
    }
}
