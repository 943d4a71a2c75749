namespace Berth.ImageStore.Content;

/// <summary>What makes a rename survive a crash: fsync of the file before, and of its directory after.</summary>
internal static class Durability
{
    public static void SyncDirectory(string directory)
    {
        // .NET cannot open a directory as a file, so through open(O_DIRECTORY).
        var fd = global::Berth.Native.Descriptors.Open(directory, global::Berth.Native.Descriptors.ORdOnly | global::Berth.Native.Descriptors.ODirectory | global::Berth.Native.Descriptors.OCloExec, 0);
        if (fd < 0) throw global::Berth.Native.Descriptors.Error("open", directory, global::Berth.Native.Descriptors.LastError);
        try
        {
            global::Berth.Native.Descriptors.Fsync(fd, directory);
        }
        finally
        {
            _ = global::Berth.Native.Descriptors.Close(fd);
        }
    }

    /// <summary>
    /// Writes a small file atomically: temp file, fsync, rename, fsync of the directory. Synchronous, as the fsyncs are
    /// in any case: a record is a few KB.
    /// </summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> content)
    {
        var directory = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0))
            {
                file.Write(content);
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
