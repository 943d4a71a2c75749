namespace Berth.ImageStore.Content;

/// <summary>What makes a rename survive a crash: fsync of the file before, and of its directory after.</summary>
internal static class Durability
{
    public static void SyncDirectory(string directory)
    {
        using var handle = File.OpenHandle(directory, FileMode.Open, FileAccess.Read);
        Native.Sys.Fsync(handle);
    }

    /// <summary>Writes a small file atomically: temp file, fsync, rename, fsync of the directory.</summary>
    public static async Task WriteAtomicAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous))
            {
                await file.WriteAsync(content, cancellationToken);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        SyncDirectory(directory);
    }
}
