using System.Runtime.InteropServices;
using System.Text;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>lstat and lgetxattr for checking unpacked trees.</summary>
public static unsafe partial class FileStat
{
    public static (uint Mode, uint Uid, uint Gid, ulong Inode, ulong Rdev) Of(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        Tmds.Linux.stat st;
        fixed (byte* p = bytes)
        {
            if (Tmds.Linux.LibC.lstat(p, &st) != 0) throw new FileNotFoundException($"lstat {path} failed", path);
        }
        return ((uint)st.st_mode, (uint)st.st_uid, (uint)st.st_gid, (ulong)st.st_ino, (ulong)st.st_rdev);
    }

    [LibraryImport("libc", EntryPoint = "lgetxattr", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint LGetXattr(string path, string name, byte* value, nuint size);

    public static byte[]? Xattr(string path, string name)
    {
        var buffer = new byte[4096];
        fixed (byte* b = buffer)
        {
            var length = LGetXattr(path, name, b, (nuint)buffer.Length);
            return length < 0 ? null : buffer[..(int)length];
        }
    }
}
