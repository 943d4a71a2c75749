using Berth.Native;

namespace Berth.ImageStore;

/// <summary>Bytes and inodes used below a directory, as ImageFsInfo and ContainerStats report them.</summary>
public sealed record FilesystemUsage(string Mountpoint, DateTimeOffset Timestamp, ulong UsedBytes, ulong InodesUsed)
{
    /// <summary>Entries one measurement looks at, at most: what a container's million files cost berthd is bounded.</summary>
    public const long MaxEntries = 1_000_000;

    /// <summary>False when the walk stopped at <see cref="MaxEntries"/>, or the tree changed under it: the figures are a lower bound.</summary>
    public bool Complete { get; init; } = true;

    /// <summary>
    /// Walks the tree by directory descriptors, never following a symlink or leaving the root's device, counting
    /// allocated blocks and inodes (hard links once).
    /// </summary>
    public static FilesystemUsage Measure(string root) => Measure(root, [root]);

    /// <summary>The sum over several trees, reported under one mountpoint.</summary>
    public static FilesystemUsage Measure(string mountpoint, IEnumerable<string> roots)
    {
        ulong bytes = 0, inodes = 0;
        var complete = true;
        foreach (var root in roots)
        {
            var usage = FileTree.Measure(root, MaxEntries);
            bytes += usage.Bytes;
            inodes += usage.Inodes;
            complete &= usage.Complete;
        }
        return new FilesystemUsage(mountpoint, DateTimeOffset.UtcNow, bytes, inodes) { Complete = complete };
    }
}
