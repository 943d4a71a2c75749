using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;

namespace Berth.Runtime.Containers;

/// <summary>
/// An image volume (a path in the image config's Volumes) is a directory of the container's own, bind-mounted
/// over that path. As with containerd, it starts with what the image has there: the tree is copied in with its
/// owners, modes, extended attributes (file capabilities among them), times, symbolic and hard links and device
/// nodes, so a database image's initial files or a cache's layout are not hidden under an empty directory.
/// </summary>
internal static unsafe partial class ImageVolume
{
    private const uint TypeMask = 0xF000;
    private const uint Directory = 0x4000;
    private const uint Regular = 0x8000;
    private const uint Symlink = 0xA000;
    private const uint Socket = 0xC000;
    private const int MaxSymlinks = 40;

    /// <summary>Copies the image's tree at <paramref name="containerPath"/> (resolved inside <paramref name="rootfs"/>) into an empty volume.</summary>
    public static void Populate(string rootfs, string containerPath, string volume)
    {
        var source = ResolveInRoot(rootfs, containerPath);
        if (Stat(source) is not { } st) return; // Nothing there: runc makes the mount point.
        if (TypeOf(st) != Directory)
            throw new ContainerRuntimeException($"image volume {containerPath}: the image has a file there, not a directory");
        CopyChildren(source, volume, new Dictionary<(ulong, ulong), string>());
        CopyAttributes(source, volume, st);
    }

    /// <summary>
    /// The host path of <paramref name="path"/> as the container will see it: symbolic links are followed with
    /// the rootfs as their root, and <c>..</c> stops there, so an image cannot point a volume at the host.
    /// </summary>
    public static string ResolveInRoot(string root, string path)
    {
        var resolved = new List<string>();
        var pending = new Stack<string>(path.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse());
        var links = 0;
        while (pending.TryPop(out var part))
        {
            if (part == ".") continue;
            if (part == "..")
            {
                if (resolved.Count > 0) resolved.RemoveAt(resolved.Count - 1);
                continue;
            }
            var candidate = Path.Join(root, string.Join('/', resolved), part);
            if (Stat(candidate) is { } st && TypeOf(st) == Symlink)
            {
                if (++links > MaxSymlinks) throw new ContainerRuntimeException($"image volume {path}: too many symbolic links");
                var target = new FileInfo(candidate).LinkTarget ?? "";
                if (target.StartsWith('/')) resolved.Clear();
                foreach (var next in target.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse()) pending.Push(next);
                continue;
            }
            resolved.Add(part);
        }
        return Path.Join(root, string.Join('/', resolved));
    }

    private static void CopyChildren(string source, string destination, Dictionary<(ulong Device, ulong Inode), string> linked)
    {
        foreach (var entry in System.IO.Directory.EnumerateFileSystemEntries(source))
        {
            var name = Path.GetFileName(entry);
            var target = Path.Join(destination, name);
            if (Stat(entry) is not { } st) continue; // Gone while we looked.
            var type = TypeOf(st);
            if (type != Directory && (ulong)st.st_nlink > 1)
            {
                var inode = ((ulong)st.st_dev, (ulong)st.st_ino);
                if (linked.TryGetValue(inode, out var first))
                {
                    Check(Link(first, target), "link", target);
                    continue;
                }
                linked[inode] = target;
            }
            switch (type)
            {
                case Directory:
                    System.IO.Directory.CreateDirectory(target);
                    CopyChildren(entry, target, linked);
                    break;
                case Regular:
                    File.Copy(entry, target);
                    break;
                case Symlink:
                    File.CreateSymbolicLink(target, new FileInfo(entry).LinkTarget!);
                    break;
                case Socket:
                    continue; // A socket means nothing without its listener.
                default:
                    Check(Mknod(target, (uint)st.st_mode, (ulong)st.st_rdev), "mknod", target);
                    break;
            }
            CopyAttributes(entry, target, st);
        }
    }

    /// <summary>
    /// Owner, then mode (chown clears setuid bits), then extended attributes (chown drops file capabilities),
    /// then times, of the entry itself (never a link's target).
    /// </summary>
    private static void CopyAttributes(string source, string target, stat st)
    {
        Check(Berth.Runtime.Native.FileOwner.Lchown(target, (uint)st.st_uid, (uint)st.st_gid), "lchown", target);
        if (TypeOf(st) != Symlink) Check(Chmod(target, (uint)st.st_mode & 0xFFF), "chmod", target);
        CopyExtendedAttributes(source, target);
        var times = stackalloc timespec[2];
        times[0] = st.st_atim;
        times[1] = st.st_mtim;
        Check(Utimensat(AtFdCwd, target, times, AtSymlinkNoFollow), "utimensat", target);
    }

    /// <summary>
    /// Every attribute but the SELinux label, which the runtime sets for the container, as containerd leaves it.
    /// A volume on a filesystem without extended attributes keeps none, as a copy there would.
    /// </summary>
    private static void CopyExtendedAttributes(string source, string target)
    {
        foreach (var name in ListAttributes(source))
        {
            if (name == "security.selinux" || ReadAttribute(source, name) is not { } value) continue;
            fixed (byte* data = value)
            {
                if (Lsetxattr(target, name, data, (nuint)value.Length, 0) == 0) continue;
            }
            if (Marshal.GetLastPInvokeError() == EOpNotSupp) return;
            Check(-1, $"lsetxattr {name}", target);
        }
    }

    private static List<string> ListAttributes(string path) =>
        ReadSized(buffer => Llistxattr(path, buffer, (nuint)(buffer?.Length ?? 0)), "llistxattr", path) is { } names
            ? [.. Encoding.UTF8.GetString(names).Split('\0', StringSplitOptions.RemoveEmptyEntries)]
            : [];

    /// <summary>The value, or null when the file has no such attribute (or went away meanwhile).</summary>
    internal static byte[]? ReadAttribute(string path, string name) =>
        ReadSized(buffer => Lgetxattr(path, name, buffer, (nuint)(buffer?.Length ?? 0)), $"lgetxattr {name}", path);

    /// <summary>
    /// Asks <paramref name="query"/> for the size, then for the bytes, again if they grew in between; null when
    /// there is nothing (no such attribute, or a filesystem without them).
    /// </summary>
    private static byte[]? ReadSized(Func<byte[]?, nint> query, string call, string path)
    {
        while (true)
        {
            var size = query(null);
            if (size >= 0)
            {
                var buffer = new byte[size];
                size = query(buffer);
                if (size >= 0) return buffer[..(int)size];
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ERange) continue;
            if (errno is ENoData or EOpNotSupp) return null;
            throw Failure(call, path);
        }
    }

    private static uint TypeOf(stat st) => (uint)st.st_mode & TypeMask;

    private static stat? Stat(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        stat st;
        fixed (byte* p = bytes)
        {
            if (LibC.lstat(p, &st) != 0) return null;
        }
        return st;
    }

    private static void Check(int result, string call, string path)
    {
        if (result != 0) throw Failure(call, path);
    }

    private static ContainerRuntimeException Failure(string call, string path) =>
        new($"image volume: {call} {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");

    private const int AtFdCwd = -100;
    private const int ENoData = 61;
    private const int ERange = 34;
    private const int EOpNotSupp = 95;
    private const int AtSymlinkNoFollow = 0x100;

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chmod(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Utimensat(int directory, string path, timespec* times, int flags);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existing, string created);

    [LibraryImport("libc", EntryPoint = "mknod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Mknod(string path, uint mode, ulong device);

    [LibraryImport("libc", EntryPoint = "llistxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint Llistxattr(string path, byte[]? list, nuint size);

    [LibraryImport("libc", EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint Lgetxattr(string path, string name, byte[]? value, nuint size);

    [LibraryImport("libc", EntryPoint = "lsetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Lsetxattr(string path, string name, byte* value, nuint size, int flags);
}
