using Berth.ImageStore.Content;

namespace Berth.ImageStore.Snapshots;

/// <summary>
/// Unpacked layers, one directory per chain ID (<c>snapshots/&lt;hex&gt;/fs</c>), each usable as an overlay lower dir.
/// A layer is unpacked into an ingest directory and renamed into place only once it is complete and verified.
/// </summary>
public sealed class SnapshotStore
{
    private readonly string _root;
    private readonly string _ingest;

    public SnapshotStore(string root)
    {
        _root = root;
        _ingest = Path.Combine(root, "ingest");
        Directory.CreateDirectory(_root);
        // Whatever an interrupted unpack left is garbage.
        if (Directory.Exists(_ingest)) Directory.Delete(_ingest, recursive: true);
        Directory.CreateDirectory(_ingest);
    }

    /// <summary>The directory holding the layer's files, for <c>lowerdir=</c>.</summary>
    public string PathOf(Digest chainId) => Path.Combine(_root, chainId.Hex, "fs");

    public bool Contains(Digest chainId) => Directory.Exists(PathOf(chainId));

    public IEnumerable<Digest> List()
    {
        foreach (var dir in Directory.EnumerateDirectories(_root))
        {
            if (Digest.TryParse(Digest.Sha256Prefix + Path.GetFileName(dir), out var digest)) yield return digest;
        }
    }

    /// <summary>
    /// Unpacks a layer tar; <paramref name="verify"/> runs after the last byte, before the commit,
    /// so a layer whose digest does not match never becomes a snapshot.
    /// </summary>
    internal async Task<UnpackResult> CommitLayerAsync(Digest chainId, Stream tar, Func<Task> verify, CancellationToken cancellationToken)
    {
        var work = Path.Combine(_ingest, $"{chainId.Hex}-{Guid.NewGuid():N}");
        var fs = Path.Combine(work, "fs");
        Directory.CreateDirectory(fs);
        try
        {
            var result = await LayerUnpacker.UnpackAsync(tar, fs, cancellationToken);
            await verify();
            var target = Path.Combine(_root, chainId.Hex);
            if (Directory.Exists(target))
            {
                Directory.Delete(work, recursive: true); // Another pull committed the same layer first.
                return result;
            }
            // The files' data must be on disk before the rename makes the snapshot visible (power loss, not only kill -9).
            Native.Sys.SyncFilesystem(work);
            Directory.Move(work, target);
            Durability.SyncDirectory(_root);
            return result;
        }
        catch
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
            throw;
        }
    }

    public void Remove(Digest chainId)
    {
        var dir = Path.Combine(_root, chainId.Hex);
        if (!Directory.Exists(dir)) return;
        // Rename first so that a crash mid-delete leaves garbage in ingest, not a half snapshot.
        var doomed = Path.Combine(_ingest, $"{chainId.Hex}-removed-{Guid.NewGuid():N}");
        Directory.Move(dir, doomed);
        Directory.Delete(doomed, recursive: true);
    }
}
