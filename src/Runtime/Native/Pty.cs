using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Berth.Runtime.Native;

/// <summary>A pseudo-terminal pair's master side, for TTY execs: berthd holds the master, runc gets the slave as its stdio.</summary>
internal sealed partial class Pty : IDisposable
{
    private const int ORdwr = 0x2;
    private const int ONoctty = 0x100;
    private const int OCloexec = 0x80000;
    private const nuint Tiocswinsz = 0x5414;

    [StructLayout(LayoutKind.Sequential)]
    private struct WinSize
    {
        public ushort Rows;
        public ushort Columns;
        public ushort XPixels;
        public ushort YPixels;
    }

    [LibraryImport("libc", EntryPoint = "posix_openpt", SetLastError = true)]
    private static partial int PosixOpenpt(int flags);

    [LibraryImport("libc", EntryPoint = "grantpt", SetLastError = true)]
    private static partial int Grantpt(int fd);

    [LibraryImport("libc", EntryPoint = "unlockpt", SetLastError = true)]
    private static partial int Unlockpt(int fd);

    [LibraryImport("libc", EntryPoint = "ptsname_r", SetLastError = true)]
    private static unsafe partial int PtsnameR(int fd, byte* buffer, nuint length);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int Ioctl(int fd, nuint request, WinSize* size);

    private Pty(SafeFileHandle master, string slavePath)
    {
        Master = master;
        SlavePath = slavePath;
    }

    public SafeFileHandle Master { get; }

    /// <summary>/dev/pts/N, opened by the runtime's launcher.</summary>
    public string SlavePath { get; }

    public static unsafe Pty Open()
    {
        var fd = PosixOpenpt(ORdwr | ONoctty | OCloexec);
        if (fd < 0) throw new IOException($"posix_openpt: errno {Marshal.GetLastPInvokeError()}");
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var buffer = stackalloc byte[128];
        if (Grantpt(fd) != 0 || Unlockpt(fd) != 0 || PtsnameR(fd, buffer, 128) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw new IOException($"preparing a pseudo-terminal: errno {errno}");
        }
        return new Pty(handle, Marshal.PtrToStringUTF8((nint)buffer)!);
    }

    public unsafe void Resize(ushort columns, ushort rows)
    {
        var size = new WinSize { Rows = rows, Columns = columns };
        _ = Ioctl((int)Master.DangerousGetHandle(), Tiocswinsz, &size);
    }

    public void Dispose() => Master.Dispose();
}
