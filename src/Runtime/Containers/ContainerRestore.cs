using System.Formats.Tar;
using Berth.Runtime.Checkpoints;

namespace Berth.Runtime.Containers;

/// <summary>
/// What a container from a checkpoint needs besides its image: its writable layer as it was (the checkpoint's
/// rootfs diff, and whiteouts for the paths deleted.files lists), unpacked into the new upper dir before the overlay
/// is mounted, with the care an image layer gets (the diff is the container's own, so as hostile as a layer).
/// </summary>
internal static class ContainerRestore
{
    /// <summary>runc's annotation naming a CRIU configuration file for this container, read after its RPC options.</summary>
    private const string CriuConfigAnnotation = "org.criu.config";

    /// <summary>
    /// CRIU puts restored processes back into the cgroup they were dumped from, which is the old container's: runc 1.1
    /// maps it onto the new one only on cgroup v1, and then <c>runc kill --all</c> and stats see an empty cgroup. A
    /// CRIU config file whose <c>cgroup-root</c> is the new container's cgroup makes that the root they go back to.
    /// </summary>
    public static Spec.OciSpec PlaceInOwnCgroup(Spec.OciSpec spec, string restoreDirectory)
    {
        var config = Path.Combine(restoreDirectory, "criu.conf");
        File.WriteAllText(config, $"cgroup-root {Cgroups.CgroupPaths.Resolve(spec.Linux?.CgroupsPath ?? "")}\n");
        return spec with { Annotations = new(spec.Annotations ?? []) { [CriuConfigAnnotation] = config } };
    }

    public static async Task PrepareWritableLayerAsync(string checkpoint, string upper, IArchiveUnpacker unpacker, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(upper);
        try
        {
            var diff = Path.Combine(checkpoint, CheckpointLayout.RootfsDiff);
            if (File.Exists(diff)) await unpacker.UnpackFileAsync(diff, upper, cancellationToken);
            // A deleted path the diff did not already whiteout (an archive of another engine may list it only here).
            var whiteouts = CheckpointArchive.ReadDeletedFiles(checkpoint)
                .Select(p => p.Trim('/'))
                .Where(p => p.Length > 0 && !Path.Exists(Path.Combine(upper, p)))
                .ToList();
            if (whiteouts.Count == 0) return;
            using var tar = new MemoryStream();
            await using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
            {
                foreach (var path in whiteouts)
                {
                    var slash = path.LastIndexOf('/');
                    var name = slash < 0 ? ".wh." + path : $"{path[..slash]}/.wh.{path[(slash + 1)..]}";
                    await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name), cancellationToken);
                }
            }
            tar.Position = 0;
            await unpacker.UnpackAsync(tar, upper, cancellationToken);
        }
        catch (InvalidDataException e)
        {
            throw new ContainerRequestException($"the checkpoint's writable layer cannot be restored: {e.Message}");
        }
    }
}
