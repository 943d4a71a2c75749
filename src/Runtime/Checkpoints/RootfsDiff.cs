using System.Formats.Tar;
using Tmds.Linux;

namespace Berth.Runtime.Checkpoints;

/// <summary>
/// A container's writable layer (the overlay's upper dir) as a layer tar: files, directories, links and devices as they
/// are, overlay whiteouts (character device 0:0) as <c>.wh.&lt;name&gt;</c> entries and opaque directories with a
/// <c>.wh..wh..opq</c> entry, which the restore unpacks into a new upper dir the same way an image layer is. Links are
/// written as links, never followed; the layer stays on its own device.
/// </summary>
internal static class RootfsDiff
{
    private const string Whiteout = ".wh.";
    private const string OpaqueMarker = ".wh..wh..opq";

    /// <summary>Writes the tar and returns the paths the layer removed (each whiteout's, "/" first), for deleted.files.</summary>
    public static async Task<List<string>> WriteAsync(string upper, string tarPath, CancellationToken cancellationToken)
    {
        var deleted = new List<string>();
        await using var file = new FileStream(tarPath, FileMode.CreateNew, FileAccess.Write);
        await using var writer = new TarWriter(file, TarEntryFormat.Pax, leaveOpen: false);
        await WalkAsync(writer, upper, "", deleted, depth: 0, cancellationToken);
        return deleted;
    }

    private static async Task WalkAsync(TarWriter writer, string directory, string relative, List<string> deleted, int depth, CancellationToken cancellationToken)
    {
        // Deep enough for any real tree, short of a path the tar format or the kernel would refuse.
        if (depth > 256) throw new IOException($"the writable layer is deeper than 256 directories at /{relative}");
        foreach (var path in Directory.EnumerateFileSystemEntries(directory).Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = Path.GetFileName(path);
            var entryName = relative.Length == 0 ? name : $"{relative}/{name}";
            if (Lstat(path) is not { } stat) continue;
            var type = stat.st_mode & LibC.S_IFMT;
            if (type == LibC.S_IFCHR && stat.st_rdev == 0)
            {
                deleted.Add("/" + entryName);
                var parent = relative.Length == 0 ? "" : relative + "/";
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, parent + Whiteout + name), cancellationToken);
                continue;
            }
            await writer.WriteEntryAsync(path, entryName, cancellationToken);
            if (type != LibC.S_IFDIR) continue;
            if (IsOpaque(path))
            {
                deleted.Add("/" + entryName);
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, $"{entryName}/{OpaqueMarker}"), cancellationToken);
            }
            await WalkAsync(writer, path, entryName, deleted, depth + 1, cancellationToken);
        }
    }

    private static stat? Lstat(string path) => NodeProbe.Lstat(path, out _);

    /// <summary>An overlay directory that hides the lower layers' (trusted.overlay.opaque=y).</summary>
    private static bool IsOpaque(string path) => Containers.ImageVolume.ReadAttribute(path, "trusted.overlay.opaque") is [(byte)'y', ..];
}
