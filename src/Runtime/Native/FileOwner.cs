using System.Runtime.InteropServices;

namespace Berth.Runtime.Native;

/// <summary>lchown(2), which .NET does not offer: the owner of an entry itself, never of a link's target.</summary>
internal static partial class FileOwner
{
    /// <summary>The raw call: 0, or -1 with the error for the caller to report.</summary>
    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Lchown(string path, uint owner, uint group);

    public static void Set(string path, uint owner, uint group)
    {
        if (Lchown(path, owner, group) != 0)
            throw new IOException($"lchown {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
    }
}
