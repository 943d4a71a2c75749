using Berth.ImageStore.Content;
using Berth.Native;
using Microsoft.Extensions.Logging;

namespace Berth.ImageStore.Snapshots;

/// <summary>
/// Unpacked layers, one directory per chain ID (<c>snapshots/&lt;hex&gt;/fs</c>), each usable as an overlay lower dir.
/// A layer is unpacked into an ingest directory and renamed into place only once it is complete and verified.
/// Whatever goes (an interrupted unpack, a removed layer) is renamed into <c>trash/</c> first and deleted from
/// there, by directory descriptors, so a crash mid-delete leaves only trash and no tree, however deep, stops startup.
/// </summary>
internal sealed partial class SnapshotStore
{
    private readonly string _ingest;
    private readonly string _trash;
    private readonly ILogger _logger;

    public SnapshotStore(string root, ILogger logger)
    {
        Root = root;
        _logger = logger;
        _ingest = Path.Combine(root, "ingest");
        _trash = Path.Combine(root, "trash");
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(_trash);
        // Whatever an interrupted unpack left is garbage; it is deleted in the background, so startup stays quick.
        if (Directory.Exists(_ingest)) Discard(_ingest);
        Directory.CreateDirectory(_ingest);
        EmptyTrashInBackground();
    }

    /// <summary>The directory holding every snapshot.</summary>
    public string Root { get; }

    /// <summary>The directory holding the layer's files, for <c>lowerdir=</c>.</summary>
    public string PathOf(Digest chainId) => Path.Combine(Root, chainId.Hex, "fs");

    public bool Contains(Digest chainId) => Directory.Exists(PathOf(chainId));

    public IEnumerable<Digest> List()
    {
        foreach (var dir in Directory.EnumerateDirectories(Root))
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
        var work = NewWorkDirectory(chainId.Hex);
        var fs = Path.Combine(work, "fs");
        Directory.CreateDirectory(fs);
        try
        {
            var result = await LayerUnpacker.UnpackAsync(tar, fs, cancellationToken);
            await verify();
            var target = Path.Combine(Root, chainId.Hex);
            if (Directory.Exists(target))
            {
                Delete(work); // Another pull committed the same layer first.
                return result;
            }
            // The files' data must be on disk before the rename makes the snapshot visible (power loss, not only kill -9).
            Native.Sys.SyncFilesystem(work);
            Directory.Move(work, target);
            Durability.SyncDirectory(Root);
            return result;
        }
        catch
        {
            Delete(work);
            throw;
        }
    }

    /// <summary>
    /// Takes a snapshot out of the store by renaming it into the trash (one quick rename, so no half snapshot is ever
    /// visible); <see cref="Purge"/> deletes what it returns. Null when there was no such snapshot.
    /// </summary>
    public string? Discard(Digest chainId) => Discard(Path.Combine(Root, chainId.Hex));

    /// <summary>Deletes a discarded snapshot; a failure is logged and left in the trash for the next start.</summary>
    public void Purge(string discarded)
    {
        try
        {
            FileTree.Remove(discarded);
        }
        catch (IOException e)
        {
            LogTrashLeft(_logger, discarded, e.Message);
        }
    }

    /// <summary>A fresh directory in ingest, for work that is not a layer (an archive being imported).</summary>
    public string NewWorkDirectory(string prefix)
    {
        var path = Path.Combine(_ingest, $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Renames into the trash, then deletes; a failure to delete is logged and left for the next start.</summary>
    public void Delete(string directory)
    {
        if (Discard(directory) is { } doomed) Purge(doomed);
    }

    private string? Discard(string directory)
    {
        if (!Directory.Exists(directory)) return null;
        var doomed = Path.Combine(_trash, $"{Path.GetFileName(directory)}-{Guid.NewGuid():N}");
        Directory.Move(directory, doomed);
        return doomed;
    }

    private void EmptyTrashInBackground()
    {
        var doomed = Directory.GetFileSystemEntries(_trash);
        if (doomed.Length == 0) return;
        _ = Task.Run(() =>
        {
            foreach (var path in doomed)
            {
                try
                {
                    FileTree.Remove(path);
                }
                catch (IOException e)
                {
                    LogTrashLeft(_logger, path, e.Message);
                }
            }
        });
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "snapshot store: could not delete {Path}, left in the trash for the next start: {Error}")]
    private static partial void LogTrashLeft(ILogger logger, string path, string error);
}
