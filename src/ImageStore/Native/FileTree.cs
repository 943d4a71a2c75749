using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;

using static Berth.Native.Descriptors;

namespace Berth.Native;

/// <summary>
/// Measures and removes trees that Berth did not write (layers, writable layers, the store) with directory
/// descriptors only: every name is resolved by <c>openat</c>/<c>fstatat</c>/<c>unlinkat</c> relative to its own
/// directory, with <c>O_NOFOLLOW</c>, on the root's device alone. So no symlink is followed, no mount is crossed,
/// and depth beyond PATH_MAX is fine. At most <see cref="OpenWindow"/> descriptors are open at once, whatever the depth.
/// Compiled into every component that walks such trees (it has no dependencies).
/// </summary>
internal static unsafe partial class FileTree
{
    /// <summary>Directory descriptors held at once; deeper ancestors are closed and reopened through "..".</summary>
    internal const int OpenWindow = 32;

    private const int BufferSize = 16 * 1024;
    private const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, AtRemoveDir = 0x200;
    private const int ORdOnly = 0, ODirectory = 0x10000, ONoFollow = 0x20000, OCloExec = 0x80000;
    private const uint SIfMt = 0xF000, SIfDir = 0x4000;
    private const byte DtDir = 4;
    private const int ENoEnt = 2, EExist = 17, EIsDir = 21, ENotEmpty = 39, EBusy = 16;
    private const long SysGetdents64 = 217;

    /// <summary>What <see cref="Measure"/> counted; <paramref name="Complete"/> is false when the budget ran out or the tree changed under the walk.</summary>
    internal readonly record struct Usage(ulong Bytes, ulong Inodes, bool Complete);

    private struct Level
    {
        public int Fd;
        public ulong Inode;
        public long Cookie; // d_off of the last entry taken: where a reopened descriptor resumes
        public byte[]? Buffer;
        public int Position;
        public int Length;
    }

    /// <summary>
    /// Allocated bytes and inodes below <paramref name="root"/> (itself included), hard links counted once.
    /// Stops after <paramref name="maxEntries"/> entries, so one hostile tree costs a bounded amount of work.
    /// </summary>
    public static Usage Measure(string root, long maxEntries)
    {
        var rootFd = OpenDirectory(AtFdCwd, root);
        if (rootFd < 0) return new Usage(0, 0, Marshal.GetLastPInvokeError() == ENoEnt);
        Stat st;
        if (FStat(rootFd, &st) != 0)
        {
            _ = Close(rootFd);
            return new Usage(0, 0, false);
        }
        var device = st.Dev;
        ulong bytes = (ulong)st.Blocks * 512, inodes = 1;
        long entries = 0;
        var complete = true;
        HashSet<(ulong, ulong)>? linked = null;
        var levels = new List<Level>(8) { new() { Fd = rootFd, Inode = st.Ino, Buffer = ArrayPool<byte>.Shared.Rent(BufferSize) } };
        var open = 1;
        try
        {
            while (levels.Count > 0)
            {
                var span = CollectionsMarshal.AsSpan(levels);
                ref var top = ref span[^1];
                if (top.Position >= top.Length)
                {
                    var read = GetDents(top.Fd, top.Buffer!);
                    if (read <= 0)
                    {
                        if (read < 0) complete = false;
                        if (!Ascend(levels, ref open))
                        {
                            complete = false;
                            break;
                        }
                        continue;
                    }
                    top.Position = 0;
                    top.Length = read;
                }
                var entry = NextEntry(ref top);
                if (entry.IsDotOrDotDot) continue;
                if (++entries > maxEntries)
                {
                    complete = false;
                    break;
                }
                if (FStatAt(top.Fd, entry.Name, &st, AtSymlinkNoFollow) != 0) continue; // gone meanwhile
                var isDirectory = (st.Mode & SIfMt) == SIfDir;
                if (!isDirectory && st.Nlink > 1 && !(linked ??= []).Add((st.Dev, st.Ino))) continue;
                bytes += (ulong)st.Blocks * 512;
                inodes++;
                if (!isDirectory || st.Dev != device) continue;
                var child = OpenDirectory(top.Fd, entry.Name);
                if (child < 0) continue;
                Stat opened;
                if (FStat(child, &opened) != 0 || opened.Ino != st.Ino || opened.Dev != device)
                {
                    _ = Close(child); // swapped for something else between the stat and the open
                    continue;
                }
                levels.Add(new Level { Fd = child, Inode = st.Ino, Buffer = ArrayPool<byte>.Shared.Rent(BufferSize) });
                if (++open > OpenWindow) CloseOldest(levels, ref open);
            }
        }
        finally
        {
            foreach (var level in levels) Release(level);
        }
        return new Usage(bytes, inodes, complete);
    }

    /// <summary>Leaves the top level; reopens its parent through ".." when the window had closed it.</summary>
    private static bool Ascend(List<Level> levels, ref int open)
    {
        var top = levels[^1];
        levels.RemoveAt(levels.Count - 1);
        try
        {
            if (levels.Count == 0) return true;
            var span = CollectionsMarshal.AsSpan(levels);
            ref var parent = ref span[^1];
            if (parent.Fd >= 0) return true;
            var fd = OpenDirectory(top.Fd, ".."u8);
            Stat st;
            if (fd < 0 || FStat(fd, &st) != 0 || st.Ino != parent.Inode || LSeek(fd, parent.Cookie, 0) < 0)
            {
                if (fd >= 0) _ = Close(fd);
                return false; // the tree was moved under the walk: stop rather than count something else
            }
            parent.Fd = fd;
            parent.Buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            parent.Position = parent.Length = 0;
            open++;
            return true;
        }
        finally
        {
            Release(top);
            open--;
        }
    }

    private static void CloseOldest(List<Level> levels, ref int open)
    {
        var span = CollectionsMarshal.AsSpan(levels);
        ref var oldest = ref span[levels.Count - 1 - OpenWindow];
        Release(oldest);
        oldest.Fd = -1;
        oldest.Buffer = null;
        oldest.Position = oldest.Length = 0;
        open--;
    }

    private static void Release(Level level)
    {
        if (level.Fd >= 0) _ = Close(level.Fd);
        if (level.Buffer is not null) ArrayPool<byte>.Shared.Return(level.Buffer);
    }

    /// <summary>
    /// Removes <paramref name="path"/> and everything below it: a file, a symlink (not its target) or a directory
    /// at any depth. A directory deeper than <see cref="OpenWindow"/> below the top is moved up to the top first, so
    /// descriptors stay bounded. A mount point inside the tree is never entered; it fails the removal, naming it.
    /// Absent is fine.
    /// </summary>
    public static void Remove(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd('/');
        if (full.Length == 0) throw new IOException("refusing to remove /");
        var parentPath = Path.GetDirectoryName(full)!;
        var name = Encoding.UTF8.GetBytes(Path.GetFileName(full) + "\0");
        var parentFd = OpenDirectory(AtFdCwd, parentPath);
        if (parentFd < 0)
        {
            var error = Marshal.GetLastPInvokeError();
            if (error == ENoEnt) return;
            throw Failure("open", parentPath, error);
        }
        try
        {
            RemoveBelow(parentFd, name, full);
        }
        finally
        {
            _ = Close(parentFd);
        }
    }

    /// <summary>As <see cref="Remove(string)"/>, for the entry <paramref name="name"/> of an open directory (an O_PATH descriptor will do).</summary>
    public static void RemoveAt(int parentFd, string name, string displayPath) =>
        RemoveBelow(parentFd, Encoding.UTF8.GetBytes(name + "\0"), displayPath);

    private static void RemoveBelow(int parentFd, byte[] name, string displayPath)
    {
        if (UnlinkAt(parentFd, name, 0) == 0) return;
        var error = Marshal.GetLastPInvokeError();
        if (error == ENoEnt) return;
        if (error != EIsDir) throw Failure("unlink", displayPath, error);
        if (UnlinkAt(parentFd, name, AtRemoveDir) == 0) return;
        error = Marshal.GetLastPInvokeError();
        if (error is not (ENotEmpty or EExist)) throw Failure("rmdir", displayPath, error);

        var topFd = OpenDirectory(parentFd, name);
        if (topFd < 0) throw Failure("open", displayPath, Marshal.GetLastPInvokeError());
        Stat st;
        if (FStat(topFd, &st) != 0)
        {
            _ = Close(topFd);
            throw Failure("stat", displayPath, Marshal.GetLastPInvokeError());
        }
        var device = st.Dev;
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        // Each level: its descriptor and its name in the level above. Emptied levels are rescanned from the start.
        var levels = new List<(int Fd, byte[] Name)>(8) { (topFd, name) };
        var moved = 0;
        try
        {
            while (levels.Count > 0)
            {
                var (fd, _) = levels[^1];
                var descended = false;
                int read;
                while (!descended && (read = GetDents(fd, buffer)) > 0)
                {
                    var level = new Level { Buffer = buffer, Length = read };
                    while (level.Position < level.Length)
                    {
                        var entry = NextEntry(ref level);
                        if (entry.IsDotOrDotDot) continue;
                        if (entry.Type != DtDir && UnlinkAt(fd, entry.Name, 0) == 0) continue;
                        error = entry.Type == DtDir ? EIsDir : Marshal.GetLastPInvokeError();
                        if (error == ENoEnt) continue;
                        if (error != EIsDir) throw Failure("unlink", Describe(displayPath, levels, entry.Name), error);
                        if (UnlinkAt(fd, entry.Name, AtRemoveDir) == 0) continue;
                        error = Marshal.GetLastPInvokeError();
                        if (error == ENoEnt) continue;
                        if (error is not (ENotEmpty or EExist))
                            throw Failure(error == EBusy ? "rmdir (a mount point)" : "rmdir", Describe(displayPath, levels, entry.Name), error);
                        if (levels.Count > OpenWindow)
                        {
                            // Too deep to hold another descriptor: lift the subtree to the top, which is rescanned.
                            var lifted = Encoding.UTF8.GetBytes($".berth-lifted-{moved++}-{Guid.NewGuid():N}\0");
                            if (RenameAt(fd, entry.Name, levels[0].Fd, lifted) != 0)
                                throw Failure("rename", Describe(displayPath, levels, entry.Name), Marshal.GetLastPInvokeError());
                            continue;
                        }
                        var child = OpenDirectory(fd, entry.Name);
                        if (child < 0) throw Failure("open", Describe(displayPath, levels, entry.Name), Marshal.GetLastPInvokeError());
                        if (FStat(child, &st) != 0 || st.Dev != device)
                        {
                            _ = Close(child);
                            throw Failure("rmdir (another filesystem)", Describe(displayPath, levels, entry.Name), EBusy);
                        }
                        levels.Add((child, entry.Name.ToArray()));
                        descended = true;
                        break;
                    }
                }
                if (descended) continue;
                // Empty now: remove it from the level above, which then starts over (entries were removed meanwhile).
                var (doneFd, doneName) = levels[^1];
                levels.RemoveAt(levels.Count - 1);
                _ = Close(doneFd);
                var above = levels.Count > 0 ? levels[^1].Fd : parentFd;
                if (UnlinkAt(above, doneName, AtRemoveDir) != 0)
                {
                    error = Marshal.GetLastPInvokeError();
                    if (error != ENoEnt) throw Failure("rmdir", Describe(displayPath, levels, doneName), error);
                }
                if (levels.Count > 0 && LSeek(levels[^1].Fd, 0, 0) < 0)
                    throw Failure("lseek", Describe(displayPath, levels, default), Marshal.GetLastPInvokeError());
            }
        }
        finally
        {
            foreach (var (fd, _) in levels) _ = Close(fd);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A readable path for errors: the top, the names held, the entry; cut to its last 512 characters.</summary>
    private static string Describe(string top, List<(int Fd, byte[] Name)> levels, ReadOnlySpan<byte> entry)
    {
        var builder = new StringBuilder(top);
        for (var i = 1; i < levels.Count; i++) builder.Append('/').Append(Encoding.UTF8.GetString(levels[i].Name.AsSpan().TrimEnd((byte)0)));
        if (!entry.IsEmpty) builder.Append('/').Append(Encoding.UTF8.GetString(entry.TrimEnd((byte)0)));
        var text = builder.ToString();
        return text.Length <= 512 ? text : "…" + text[^511..];
    }

    private static IOException Failure(string call, string path, int error) =>
        new($"{call} {path}: {Marshal.GetPInvokeErrorMessage(error)}") { HResult = error };

    private readonly ref struct Entry(ReadOnlySpan<byte> name, byte type)
    {
        /// <summary>The name with its terminating NUL, ready for the *at() calls.</summary>
        public ReadOnlySpan<byte> Name { get; } = name;

        public byte Type { get; } = type;

        public bool IsDotOrDotDot => Name is [(byte)'.', 0] or [(byte)'.', (byte)'.', 0];
    }

    /// <summary>Takes the next linux_dirent64 of the level's buffer: ino, off, reclen, type, then the name.</summary>
    private static Entry NextEntry(ref Level level)
    {
        var record = level.Buffer.AsSpan(level.Position, level.Length - level.Position);
        var cookie = MemoryMarshal.Read<long>(record[8..]);
        var length = MemoryMarshal.Read<ushort>(record[16..]);
        var type = record[18];
        var name = record[19..length];
        name = name[..(name.IndexOf((byte)0) + 1)];
        level.Position += length;
        level.Cookie = cookie;
        return new Entry(name, type);
    }

    private static int OpenDirectory(int dirFd, string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        return OpenDirectory(dirFd, bytes);
    }

    private static int OpenDirectory(int dirFd, ReadOnlySpan<byte> nameWithNul)
    {
        fixed (byte* p = nameWithNul) return OpenAt(dirFd, p, ORdOnly | ODirectory | ONoFollow | OCloExec, 0);
    }

    private static int GetDents(int fd, byte[] buffer)
    {
        fixed (byte* p = buffer) return (int)Syscall3(SysGetdents64, fd, (nint)p, Math.Min(buffer.Length, BufferSize));
    }

    private static int FStatAt(int dirFd, ReadOnlySpan<byte> nameWithNul, Stat* st, int flags)
    {
        fixed (byte* p = nameWithNul) return FStatAtNative(dirFd, p, st, flags);
    }

    private static int UnlinkAt(int dirFd, ReadOnlySpan<byte> nameWithNul, int flags)
    {
        fixed (byte* p = nameWithNul) return UnlinkAtNative(dirFd, p, flags);
    }

    private static int RenameAt(int fromFd, ReadOnlySpan<byte> from, int toFd, ReadOnlySpan<byte> to)
    {
        fixed (byte* f = from)
        fixed (byte* t = to)
            return RenameAtNative(fromFd, f, toFd, t);
    }

    /// <summary>struct stat of Linux x86-64.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Stat
    {
        public ulong Dev;
        public ulong Ino;
        public ulong Nlink;
        public uint Mode;
        public uint Uid;
        public uint Gid;
        private readonly int _pad0;
        public ulong Rdev;
        public long Size;
        public long BlkSize;
        public long Blocks;
        private fixed long _times[6];
        private fixed long _reserved[3];
    }

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true)]
    private static partial int OpenAt(int dirFd, byte* path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "fstatat", SetLastError = true)]
    private static partial int FStatAtNative(int dirFd, byte* path, Stat* st, int flags);

    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int FStat(int fd, Stat* st);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true)]
    private static partial int UnlinkAtNative(int dirFd, byte* path, int flags);

    [LibraryImport("libc", EntryPoint = "renameat", SetLastError = true)]
    private static partial int RenameAtNative(int fromFd, byte* from, int toFd, byte* to);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long LSeek(int fd, long offset, int whence);


    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall3(long number, long a, nint b, long c);
}
