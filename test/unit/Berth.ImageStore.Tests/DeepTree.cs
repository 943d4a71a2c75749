using System.Runtime.InteropServices;

namespace Berth.ImageStore.Tests;

/// <summary>Builds directory chains deeper than PATH_MAX, one level at a time relative to the last (mkdirat, openat).</summary>
internal static partial class DeepTree
{
    private const int ORdOnly = 0, ODirectory = 0x10000, OCloExec = 0x80000, OCreat = 0x40, OWrOnly = 1;

    /// <summary>Makes <paramref name="levels"/> nested directories below <paramref name="root"/>, each with files; returns the depth made.</summary>
    public static int Create(string root, int levels, int nameLength, int filesPerLevel)
    {
        var name = new string('d', nameLength);
        var fd = Open(root, ORdOnly | ODirectory | OCloExec, 0);
        if (fd < 0) throw new IOException($"open {root}: errno {Marshal.GetLastPInvokeError()}");
        var made = 0;
        try
        {
            for (; made < levels; made++)
            {
                if (MkdirAt(fd, name, 0x1ED) != 0) throw new IOException($"mkdirat at depth {made}: errno {Marshal.GetLastPInvokeError()}");
                for (var f = 0; f < filesPerLevel; f++)
                {
                    var file = OpenAt(fd, $"f{f}", OWrOnly | OCreat | OCloExec, 0x1A4);
                    if (file < 0) throw new IOException($"openat at depth {made}: errno {Marshal.GetLastPInvokeError()}");
                    _ = Close(file);
                }
                var next = OpenAt(fd, name, ORdOnly | ODirectory | OCloExec, 0);
                if (next < 0) throw new IOException($"openat at depth {made}: errno {Marshal.GetLastPInvokeError()}");
                _ = Close(fd);
                fd = next;
            }
        }
        finally
        {
            _ = Close(fd);
        }
        return made;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(int dirFd, string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkdirAt(int dirFd, string path, uint mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
