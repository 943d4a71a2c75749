using System.Runtime.InteropServices;

namespace Berth.Native;

/// <summary>
/// open, close and fsync, and errno as an exception that names the call and the path: the descriptor calls every
/// native layer of berthd needs, declared once. One source, compiled into the image store, the runtime, the sandbox and the shim.
/// </summary>
internal static partial class Descriptors
{
    public const int ORdOnly = 0, OWrOnly = 1, ORdWr = 2, OCreat = 0x40, OExcl = 0x80, OTrunc = 0x200, OAppend = 0x400;
    public const int ODirectory = 0x10000, ONoFollow = 0x20000, OCloExec = 0x80000, OPath = 0x200000;

    public static int LastError => Marshal.GetLastPInvokeError();

    public static IOException Error(string call, string path, int error) =>
        new($"{call} {path}: {Marshal.GetPInvokeErrorMessage(error)} (errno {error})") { HResult = error };

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, uint mode = 0);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncNative(int fd);

    public static void Fsync(int fd, string pathForErrors)
    {
        if (FsyncNative(fd) != 0) throw Error("fsync", pathForErrors, LastError);
    }

    /// <summary>Makes a directory's entries (a file just renamed into it) survive a crash.</summary>
    public static void SyncDirectory(string directory)
    {
        var fd = Open(directory, ORdOnly | ODirectory | OCloExec);
        if (fd < 0) throw Error("open", directory, LastError);
        try
        {
            Fsync(fd, directory);
        }
        finally
        {
            _ = Close(fd);
        }
    }
}
