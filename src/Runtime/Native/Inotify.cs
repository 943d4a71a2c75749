using System.Runtime.InteropServices;

namespace Berth.Native;

/// <summary>inotify(7), declared once for the watchers of the runtime (cgroup files, CDI spec directories).</summary>
internal static unsafe partial class Inotify
{
    public const int NonBlockCloseOnExec = 0x80000 /* IN_CLOEXEC */ | 0x800 /* IN_NONBLOCK */;

    /// <summary>A new non-blocking instance, or an IOException saying why there is none.</summary>
    public static int Open()
    {
        var fd = Init1(NonBlockCloseOnExec);
        return fd >= 0 ? fd : throw new IOException($"inotify_init1: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
    }

    [LibraryImport("libc", EntryPoint = "inotify_init1", SetLastError = true)]
    private static partial int Init1(int flags);

    [LibraryImport("libc", EntryPoint = "inotify_add_watch", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int AddWatch(int fd, string path, uint mask);

    [LibraryImport("libc", EntryPoint = "inotify_rm_watch", SetLastError = true)]
    public static partial int RmWatch(int fd, int watch);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nuint count);
}
