using System.Formats.Tar;
using System.Text;
using Microsoft.Win32.SafeHandles;
using static Berth.ImageStore.Native.Sys;
using static Berth.Native.Descriptors;

namespace Berth.ImageStore.Snapshots;

/// <summary>
/// Unpacks one layer tar into an empty directory as an overlay lower dir: whiteouts become
/// char-device 0/0 and <c>trusted.overlay.opaque</c>, and owners, modes (setuid, sticky), xattrs,
/// links and mtimes are kept.
/// Hostile layers are refused, never half-trusted: every parent directory is opened with
/// <c>openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)</c> relative to the layer root, so no entry
/// can land outside it, whether through <c>..</c>, an absolute name, or a symlink planted earlier.
/// </summary>
internal sealed class LayerUnpacker : IDisposable
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueWhiteout = ".wh..wh..opq";
    private const string OpaqueXattr = "trusted.overlay.opaque";
    private static readonly Dictionary<string, byte[]> Empty = [];

    private readonly int _rootFd;
    private readonly List<(string Path, DateTimeOffset Mtime)> _directoryTimes = [];
    private string? _cachedDirectory;
    private int _cachedDirectoryFd = -1;

    private readonly string _root;

    private LayerUnpacker(string root)
    {
        _root = root;
        _rootFd = Open(root, OPath | ODirectory | OCloExec, 0);
        if (_rootFd < 0) throw Error("open", root, LastError);
    }

    /// <summary>Bytes of file content written, the snapshot's size.</summary>
    public long ContentBytes { get; private set; }

    /// <summary>The current entry's xattrs from its PAX header, as bytes (<see cref="PaxHeaderTap"/>).</summary>
    private IReadOnlyDictionary<string, byte[]>? _entryXattrs;

    /// <summary>Unpacks <paramref name="tar"/> into the existing, empty directory <paramref name="root"/>.</summary>
    public static async Task<UnpackResult> UnpackAsync(Stream tar, string root, CancellationToken cancellationToken)
    {
        using var unpacker = new LayerUnpacker(root);
        await using var tap = new PaxHeaderTap(tar);
        using var reader = new TarReader(tap, leaveOpen: true);
        while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
        {
            cancellationToken.ThrowIfCancellationRequested();
            unpacker._entryXattrs = tap.TakeEntryXattrs();
            try
            {
                await unpacker.ApplyAsync(entry, cancellationToken);
            }
            catch (IOException e) when (IsStorageFull(e) && !e.Message.Contains(root, StringComparison.Ordinal))
            {
                throw new IOException($"{e.Message} (unpacking '{Abbreviate(entry.Name)}' into {root})", e) { HResult = e.HResult };
            }
            catch (IOException e) when (!IsStorageFull(e))
            {
                // The layer asked for something this filesystem refuses: the image's fault, named by its entry.
                throw new ImageFormatException($"entry '{Abbreviate(entry.Name)}' cannot be unpacked: {e.Message}", e);
            }
        }
        unpacker.ApplyDirectoryTimes();
        return new UnpackResult(unpacker.ContentBytes);
    }

    /// <summary>ENOSPC or EDQUOT: the node's disk, not the layer, is at fault.</summary>
    internal static bool IsStorageFull(IOException e) => e.HResult is 28 or 122;

    private async Task ApplyAsync(TarEntry entry, CancellationToken cancellationToken)
    {
        var name = Normalize(entry.Name, "entry");
        if (name.Length == 0)
        {
            // "./": the layer root itself; only its metadata applies.
            if (entry.EntryType != TarEntryType.Directory)
                throw new UnsafeLayerException($"entry '{entry.Name}' replaces the layer root with a {entry.EntryType}");
            ApplyMetadataAt(_rootFd, ".", entry, isDirectory: true);
            _directoryTimes.Add(("", entry.ModificationTime));
            return;
        }

        var (directory, baseName) = Split(name);
        var parent = OpenDirectory(directory, create: true, Abbreviate(entry.Name));

        if (baseName.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            ApplyWhiteout(parent, directory, baseName, entry);
            return;
        }

        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                CreateDirectory(parent, name, baseName, entry);
                break;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                await CreateFileAsync(parent, name, baseName, entry, cancellationToken);
                break;
            case TarEntryType.SymbolicLink:
                CreateSymlink(parent, name, baseName, entry);
                break;
            case TarEntryType.HardLink:
                CreateHardLink(parent, name, baseName, entry);
                break;
            case TarEntryType.Fifo:
                RemoveExisting(parent, name, baseName);
                MakeNode(parent, name, baseName, SIfIfo | ((uint)entry.Mode & 0x1FF), 0);
                ApplyMetadataAt(parent, baseName, entry, isDirectory: false);
                break;
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                throw new UnsafeLayerException($"entry '{entry.Name}' is a device node ({entry.EntryType}); layers may not carry devices");
            default:
                throw new ImageFormatException($"entry '{entry.Name}' has the unsupported tar type {entry.EntryType}");
        }
    }

    private void ApplyWhiteout(int parent, string directory, string baseName, TarEntry entry)
    {
        if (baseName == OpaqueWhiteout)
        {
            // The directory hides everything below it in lower layers.
            var dirFd = OpenChecked(parent, ".", ORdOnly | ODirectory | OCloExec, directory);
            try
            {
                FSetXattr(dirFd, OpaqueXattr, "y"u8, directory);
            }
            finally
            {
                _ = Close(dirFd);
            }
            return;
        }
        if (baseName.StartsWith(WhiteoutPrefix + WhiteoutPrefix, StringComparison.Ordinal))
            return; // aufs bookkeeping (.wh..wh.plnk and the like), meaningless to overlay.

        var hidden = baseName[WhiteoutPrefix.Length..];
        if (hidden is "" or "." or "..")
            throw new UnsafeLayerException($"whiteout '{entry.Name}' names {(hidden.Length == 0 ? "no file" : $"'{hidden}'")}");
        var hiddenPath = directory.Length == 0 ? hidden : $"{directory}/{hidden}";
        RemoveExisting(parent, hiddenPath, hidden);
        MakeNode(parent, hiddenPath, hidden, SIfChr, 0);
    }

    private void CreateDirectory(int parent, string name, string baseName, TarEntry entry)
    {
        var existing = FileTypeAt(parent, baseName);
        if (existing is not null && existing != SIfDir)
        {
            RemoveExisting(parent, name, baseName);
            existing = null;
        }
        if (existing is null)
        {
            if (MkdirAt(parent, baseName, 0x1C0 /* 0700 until its metadata is applied */) != 0) throw Error("mkdir", name, LastError);
        }
        ApplyMetadataAt(parent, baseName, entry, isDirectory: true);
        _directoryTimes.Add((name, entry.ModificationTime));
    }

    private async Task CreateFileAsync(int parent, string name, string baseName, TarEntry entry, CancellationToken cancellationToken)
    {
        RemoveExisting(parent, name, baseName);
        var fd = OpenChecked(parent, baseName, OWrOnly | OCreat | OExcl | ONoFollow | OCloExec, name, 0x180 /* 0600 */);
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        await using var file = new FileStream(handle, FileAccess.Write, bufferSize: 0);
        try
        {
            if (entry.DataStream is { } data) await data.CopyToAsync(file, 128 * 1024, cancellationToken);
        }
        catch (IOException e) when (IsStorageFull(e))
        {
            // A stream over a descriptor knows no path; the caller is told which file met the full disk.
            throw new IOException($"{e.Message}: {Path.Combine(_root, Abbreviate(name))}", e) { HResult = e.HResult };
        }
        ApplyMetadata(fd, name, entry);
        SetTimes(fd, null, entry.ModificationTime, 0);
        ContentBytes += entry.Length;
    }

    private void CreateSymlink(int parent, string name, string baseName, TarEntry entry)
    {
        CheckSymlinkTarget(name, entry.LinkName);
        RemoveExisting(parent, name, baseName);
        if (SymlinkAt(entry.LinkName, parent, baseName) != 0) throw Error("symlink", name, LastError);
        if (FChownAt(parent, baseName, (uint)entry.Uid, (uint)entry.Gid, AtSymlinkNoFollow) != 0) throw Error("lchown", name, LastError);
        SetTimes(parent, baseName, entry.ModificationTime, AtSymlinkNoFollow);
    }

    private void CreateHardLink(int parent, string name, string baseName, TarEntry entry)
    {
        var target = Normalize(entry.LinkName, $"hard link '{entry.Name}' target");
        if (target.Length == 0)
            throw new UnsafeLayerException($"hard link '{entry.Name}' points at the layer root");
        var (targetDirectory, targetBase) = Split(target);
        // Walked without the cache, which holds the link's own parent.
        var targetParent = WalkDirectory(targetDirectory, create: false, target);
        try
        {
            var type = FileTypeAt(targetParent, targetBase);
            if (type is null)
                throw new UnsafeLayerException($"hard link '{entry.Name}' points at '{entry.LinkName}', which is not in this layer");
            if (type == SIfDir)
                throw new UnsafeLayerException($"hard link '{entry.Name}' points at the directory '{entry.LinkName}'");
            RemoveExisting(parent, name, baseName);
            if (LinkAt(targetParent, targetBase, parent, baseName, 0) != 0) throw Error("link", name, LastError);
        }
        finally
        {
            _ = Close(targetParent);
        }
    }

    private static void MakeNode(int parent, string name, string baseName, uint mode, ulong device)
    {
        if (MknodAt(parent, baseName, mode, device) != 0) throw Error("mknod", name, LastError);
    }

    private void ApplyMetadataAt(int parent, string baseName, TarEntry entry, bool isDirectory)
    {
        if (isDirectory)
        {
            var fd = OpenChecked(parent, baseName, ORdOnly | ODirectory | ONoFollow | OCloExec, entry.Name);
            try
            {
                ApplyMetadata(fd, entry.Name, entry);
            }
            finally
            {
                _ = Close(fd);
            }
            return;
        }
        // A fifo: opening it for I/O would block, so it is changed by name (it was just made, so it is no symlink).
        if (FChownAt(parent, baseName, (uint)entry.Uid, (uint)entry.Gid, AtSymlinkNoFollow) != 0) throw Error("chown", entry.Name, LastError);
        if (FChmodAt(parent, baseName, (uint)entry.Mode, 0) != 0) throw Error("chmod", entry.Name, LastError);
        SetTimes(parent, baseName, entry.ModificationTime, AtSymlinkNoFollow);
    }

    private void ApplyMetadata(int fd, string name, TarEntry entry)
    {
        if (FChown(fd, (uint)entry.Uid, (uint)entry.Gid) != 0) throw Error("chown", name, LastError);
        // After chown, which clears setuid and setgid.
        if (FChmod(fd, (uint)entry.Mode) != 0) throw Error("chmod", name, LastError);
        foreach (var (xattr, value) in _entryXattrs ?? Empty) FSetXattr(fd, xattr, value, name);
    }

    private static unsafe void SetTimes(int fd, string? baseName, DateTimeOffset mtime, int flags)
    {
        var unixNanos = (mtime.UtcTicks - DateTime.UnixEpoch.Ticks) * 100;
        var times = stackalloc Timespec[2];
        times[0].Seconds = unixNanos / 1_000_000_000;
        times[0].Nanoseconds = unixNanos % 1_000_000_000;
        times[1] = times[0];
        var result = baseName is null ? FUtimens(fd, times) : UtimensAt(fd, baseName, times, flags);
        if (result != 0) throw Error("utimensat", baseName ?? "", LastError);
    }

    /// <summary>Directory mtimes last, since creating their children changed them.</summary>
    private void ApplyDirectoryTimes()
    {
        for (var i = _directoryTimes.Count - 1; i >= 0; i--)
        {
            var (path, mtime) = _directoryTimes[i];
            if (path.Length == 0)
            {
                SetTimes(_rootFd, ".", mtime, 0);
                continue;
            }
            var (directory, baseName) = Split(path);
            var parent = WalkDirectory(directory, create: false, path);
            try
            {
                if (FileTypeAt(parent, baseName) == SIfDir) SetTimes(parent, baseName, mtime, AtSymlinkNoFollow);
            }
            finally
            {
                _ = Close(parent);
            }
        }
    }

    /// <summary>Makes room for a new entry: a later entry of the same name replaces the earlier one, as tar does.</summary>
    private void RemoveExisting(int parent, string name, string baseName)
    {
        var type = FileTypeAt(parent, baseName);
        if (type is null) return;
        if (type == SIfDir)
        {
            // The cache may hold a directory below the one going; the parent descriptor itself stays valid.
            if (_cachedDirectoryFd != parent) ForgetCachedDirectory();
            Berth.Native.FileTree.RemoveAt(parent, baseName, name);
            return;
        }
        if (UnlinkAt(parent, baseName, 0) != 0) throw Error("unlink", name, LastError);
    }

    /// <summary>An O_PATH descriptor of a directory inside the layer (cached for runs of entries in one directory).</summary>
    private int OpenDirectory(string directory, bool create, string forEntry)
    {
        if (directory == _cachedDirectory) return _cachedDirectoryFd;
        ForgetCachedDirectory();
        _cachedDirectoryFd = WalkDirectory(directory, create, forEntry);
        _cachedDirectory = directory;
        return _cachedDirectoryFd;
    }

    private void ForgetCachedDirectory()
    {
        if (_cachedDirectoryFd >= 0) _ = Close(_cachedDirectoryFd);
        _cachedDirectoryFd = -1;
        _cachedDirectory = null;
    }

    /// <summary>
    /// Opens a directory below the root one component at a time with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
    /// creating missing ones (0755, as tar does for implied parents) when asked. The caller closes the result.
    /// </summary>
    private int WalkDirectory(string directory, bool create, string forEntry)
    {
        var fd = OpenChecked(_rootFd, ".", OPath | ODirectory | OCloExec, "/");
        if (directory.Length == 0) return fd;
        try
        {
            var walked = 0;
            foreach (var component in directory.Split('/'))
            {
                walked += component.Length + 1;
                var next = OpenBeneath(fd, component, out var error);
                if (next < 0 && error == ENoEnt && create)
                {
                    if (MkdirAt(fd, component, 0x1ED /* 0755 */) != 0 && LastError != EExist) throw Error("mkdir", forEntry, LastError);
                    next = OpenBeneath(fd, component, out error);
                }
                if (next < 0)
                {
                    // O_DIRECTORY reports a trailing symlink as ENOTDIR; say which it was.
                    if (error == ENotDir && FileTypeAt(fd, component) == SIfLnk) error = ELoop;
                    var through = Abbreviate(directory[..(walked - 1)]);
                    throw error switch
                    {
                        ELoop => new UnsafeLayerException($"'{forEntry}' walks through the symlink '{through}'"),
                        ENotDir => new UnsafeLayerException($"'{forEntry}' walks through '{through}', which is not a directory"),
                        EXDev => new UnsafeLayerException($"'{forEntry}' escapes the layer root"),
                        ENoEnt => new UnsafeLayerException($"'{forEntry}' needs the directory '{Abbreviate(directory)}', which is not in this layer"),
                        _ => Error("openat2", forEntry, error),
                    };
                }
                _ = Close(fd);
                fd = next;
            }
            return fd;
        }
        catch
        {
            _ = Close(fd);
            throw;
        }
    }

    private static int OpenBeneath(int dirFd, string component, out int error)
    {
        var fd = OpenAt2(dirFd, component, OPath | ODirectory | ONoFollow | OCloExec,
            ResolveBeneath | ResolveNoSymlinks | ResolveNoMagicLinks | ResolveNoXdev);
        error = fd < 0 ? LastError : 0;
        return fd;
    }

    private static int OpenChecked(int dirFd, string baseName, int flags, string forEntry, uint mode = 0)
    {
        var fd = OpenAt(dirFd, baseName, flags, mode);
        if (fd >= 0) return fd;
        var error = LastError;
        throw error == ELoop
            ? new UnsafeLayerException($"'{forEntry}' is a symlink where a file or directory was expected")
            : Error("open", forEntry, error);
    }

    /// <summary>
    /// Lexically normalizes a tar name to a path relative to the layer root ("" for the root itself).
    /// An absolute name, or one whose ".." climbs above the root, is refused; symlinks are handled by openat2.
    /// </summary>
    internal static string Normalize(string name, string what)
    {
        if (name.StartsWith('/'))
            throw new UnsafeLayerException($"{what} '{name}' is an absolute path");
        if (name.Contains('\0', StringComparison.Ordinal))
            throw new UnsafeLayerException($"{what} '{name}' contains a NUL byte");
        var parts = new List<string>();
        foreach (var part in name.Split('/'))
        {
            switch (part)
            {
                case "" or ".":
                    continue;
                case "..":
                    if (parts.Count == 0) throw new UnsafeLayerException($"{what} '{name}' escapes the layer root");
                    parts.RemoveAt(parts.Count - 1);
                    continue;
                default:
                    if (Encoding.UTF8.GetByteCount(part) > MaxNameBytes)
                        throw new ImageFormatException($"{what} '{Abbreviate(name)}' has a name of {Encoding.UTF8.GetByteCount(part)} bytes; Linux allows {MaxNameBytes}");
                    parts.Add(part);
                    continue;
            }
        }
        return string.Join('/', parts);
    }

    /// <summary>
    /// Absolute targets resolve inside the container's root at run time and are fine; a relative
    /// target that climbs above the layer root is refused.
    /// </summary>
    internal static void CheckSymlinkTarget(string name, string target)
    {
        if (target.Length == 0)
            throw new UnsafeLayerException($"symlink '{name}' has an empty target");
        if (target.StartsWith('/')) return;
        var depth = name.Count(c => c == '/');
        foreach (var part in target.Split('/'))
        {
            if (part is "" or ".") continue;
            depth += part == ".." ? -1 : 1;
            if (depth < 0)
                throw new UnsafeLayerException($"symlink '{name}' -> '{target}' points outside the layer root");
        }
    }

    /// <summary>NAME_MAX: the longest name of one directory entry.</summary>
    private const int MaxNameBytes = 255;

    /// <summary>Names in messages stay readable: a 10,000-byte path is cut in the middle.</summary>
    private static string Abbreviate(string name) => name.Length <= 300 ? name : $"{name[..150]}…{name[^150..]}";

    private static (string Directory, string BaseName) Split(string path)
    {
        var slash = path.LastIndexOf('/');
        return slash < 0 ? ("", path) : (path[..slash], path[(slash + 1)..]);
    }

    public void Dispose()
    {
        ForgetCachedDirectory();
        _ = Close(_rootFd);
    }
}

/// <summary>What unpacking a layer produced.</summary>
internal sealed record UnpackResult(long ContentBytes);
