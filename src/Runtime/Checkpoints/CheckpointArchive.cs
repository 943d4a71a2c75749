using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;

namespace Berth.Runtime.Checkpoints;

/// <summary>
/// Unpacks tars with the care a layer gets (nothing outside the target, no link out, whiteouts as overlay whiteouts):
/// the image store's unpacker, handed in by the composition root. A tar that is not one, or is hostile, is an
/// <see cref="InvalidDataException"/> saying why.
/// </summary>
public interface IArchiveUnpacker
{
    /// <summary>A tar file, plain, gzip or zstd.</summary>
    Task UnpackFileAsync(string archive, string directory, CancellationToken cancellationToken);

    Task UnpackAsync(Stream tar, string directory, CancellationToken cancellationToken);
}

/// <summary>A checkpoint archive: written from a directory in one step, and read back.</summary>
public static class CheckpointArchive
{
    /// <summary>
    /// Tars <paramref name="directory"/>'s content into <paramref name="location"/> (gzip for <c>.gz</c> or <c>.tgz</c>),
    /// readable by root alone (a checkpoint holds the processes' memory), written under a temporary name and renamed,
    /// so a failure leaves no partial archive.
    /// </summary>
    public static async Task WriteAsync(string directory, string location, CancellationToken cancellationToken)
    {
        var temporary = $"{location}.tmp-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}";
        try
        {
            await using (var file = new FileStream(temporary, new FileStreamOptions
                         {
                             Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                         }))
            {
                var gzip = location.EndsWith(".gz", StringComparison.Ordinal) || location.EndsWith(".tgz", StringComparison.Ordinal);
                await using var output = gzip ? new GZipStream(file, CompressionLevel.Fastest) : (Stream)file;
                await TarFile.CreateFromDirectoryAsync(directory, output, includeBaseDirectory: false, cancellationToken);
            }
            File.Move(temporary, location, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>config.dump of an unpacked archive; an <see cref="InvalidDataException"/> when it has none that parses.</summary>
    public static CheckpointConfig ReadConfig(string directory)
    {
        var path = Path.Combine(directory, CheckpointLayout.ConfigDump);
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), CheckpointJsonContext.Default.CheckpointConfig)
                   ?? throw new InvalidDataException($"{CheckpointLayout.ConfigDump} is empty");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InvalidDataException($"it has no {CheckpointLayout.ConfigDump}: not a container checkpoint", e);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{CheckpointLayout.ConfigDump} does not parse: {e.Message}", e);
        }
    }

    /// <summary>The paths deleted.files lists, or none when the archive has no such file.</summary>
    public static List<string> ReadDeletedFiles(string directory)
    {
        var path = Path.Combine(directory, CheckpointLayout.DeletedFiles);
        if (!File.Exists(path)) return [];
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), CheckpointJsonContext.Default.ListString) ?? [];
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{CheckpointLayout.DeletedFiles} does not parse: {e.Message}", e);
        }
    }

    public static void WriteJson<T>(string path, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        File.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(value, type));
}
