namespace Berth.ImageStore;

/// <summary>Bytes and inodes used below a directory, as ImageFsInfo reports them.</summary>
public sealed record FilesystemUsage(string Mountpoint, DateTimeOffset Timestamp, ulong UsedBytes, ulong InodesUsed)
{
    /// <summary>Walks the tree without following symlinks, counting allocated blocks and distinct inodes.</summary>
    public static FilesystemUsage Measure(string root)
    {
        ulong bytes = 0;
        var inodes = new HashSet<(ulong Device, ulong Inode)>();
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true, ReturnSpecialDirectories = false };
        Count(root);
        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", options)) Count(path);
        return new FilesystemUsage(root, DateTimeOffset.UtcNow, bytes, (ulong)inodes.Count);

        void Count(string path)
        {
            if (!Native.Stat.TryLstat(path, out var device, out var inode, out var blocks)) return;
            if (inodes.Add((device, inode))) bytes += blocks * 512;
        }
    }
}
