using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;

namespace Berth.Runtime.Containers;

/// <summary>How a container's root filesystem is put together from the image's snapshots and its own writable layer.</summary>
internal interface IRootfsMounter
{
    /// <summary>
    /// With an idmap, the layers are idmapped copies (the pod's user namespace sees the image's owners) and the upper
    /// dir is its root's.
    /// </summary>
    void Mount(IReadOnlyList<string> lowerDirs, string upper, string work, string target, LayerIdmap? idmap);

    /// <summary>A read-only overlay of the snapshots alone, for an image volume.</summary>
    void MountReadOnly(IReadOnlyList<string> lowerDirs, string target, LayerIdmap? idmap);

    /// <summary>Unmounts if mounted; idempotent.</summary>
    void Unmount(string target);
}

/// <summary>
/// An overlay of the image's snapshots with the container's own upper and work dirs. Each overlay mount names its
/// directories by descriptors held for the call (<c>/proc/self/fd/N</c>), not by their paths: every runc, and every
/// shim's runtime at its start, reads the node's whole mount table as the kernel's text, and a rootfs line with the
/// layers' full paths is about 600 bytes, with descriptors about 220 (README, Node scale). The record keeps the paths.
/// </summary>
internal sealed unsafe class OverlayRootfs : IRootfsMounter
{
    public void Mount(IReadOnlyList<string> lowerDirs, string upper, string work, string target, LayerIdmap? idmap)
    {
        Directory.CreateDirectory(upper);
        Directory.CreateDirectory(work);
        Directory.CreateDirectory(target);
        // What the pod's root writes lands in the upper dir as the node's ID of that root.
        if (idmap is not null) Native.FileOwner.Set(upper, idmap.UserNamespace.HostRoot.Uid, idmap.UserNamespace.HostRoot.Gid);
        WithLayers(lowerDirs, idmap, lowers => MountOverlay(lowers, (upper, work), target, 0, EmptyLayer(work)));
    }

    public void MountReadOnly(IReadOnlyList<string> lowerDirs, string target, LayerIdmap? idmap)
    {
        Directory.CreateDirectory(target);
        // Without an upper dir the overlay is read-only; MS_RDONLY says so to the VFS as well.
        WithLayers(lowerDirs, idmap, lowers => MountOverlay(lowers, null, target, LibC.MS_RDONLY, EmptyLayer(target)));
    }

    /// <summary>One overlay mount, its directories named by descriptors held for the call.</summary>
    private static void MountOverlay(IReadOnlyList<string> lowers, (string Upper, string Work)? writable, string target, ulong flags, Func<string> emptyLayer)
    {
        // overlay wants two layers at least: a single-layer image gets an empty second one below it.
        if (lowers.Count == 1) lowers = [.. lowers, emptyLayer()];
        var descriptors = new List<int>(lowers.Count + 2);
        try
        {
            string Held(string path)
            {
                var fd = Berth.Native.Descriptors.Open(path, Berth.Native.Descriptors.OPath | Berth.Native.Descriptors.ODirectory | Berth.Native.Descriptors.OCloExec);
                if (fd < 0) throw new ContainerRuntimeException($"mount overlay on {target}: {Berth.Native.Descriptors.Error("open", path, Berth.Native.Descriptors.LastError).Message}");
                descriptors.Add(fd);
                return $"/proc/self/fd/{fd.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
            }
            var options = $"lowerdir={string.Join(':', lowers.Select(Held))}";
            if (writable is var (upper, work)) options += $",upperdir={Held(upper)},workdir={Held(work)},index=off";
            if (options.Length >= 4096)
                throw new ContainerRuntimeException($"the image has too many layers ({lowers.Count}) for one overlay mount");
            var result = Call("overlay", target, "overlay", flags, options);
            if (result != 0) throw new ContainerRuntimeException($"mount overlay on {target}: {Marshal.GetPInvokeErrorMessage(result)}");
        }
        finally
        {
            foreach (var fd in descriptors) Berth.Native.Descriptors.Close(fd);
        }
    }

    /// <summary>
    /// Runs the mount on the snapshots themselves, or on idmapped copies of them, which go again once the overlay is
    /// mounted: it holds its layers by reference, so only the overlay is left to unmount.
    /// </summary>
    private static void WithLayers(IReadOnlyList<string> lowerDirs, LayerIdmap? idmap, Action<IReadOnlyList<string>> mount)
    {
        if (idmap is null)
        {
            mount(lowerDirs);
            return;
        }
        var copies = new List<string>(lowerDirs.Count);
        try
        {
            for (var i = 0; i < lowerDirs.Count; i++)
            {
                var copy = Path.Combine(idmap.Directory, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                try
                {
                    IdmappedMount.Create(lowerDirs[i], copy, idmap.UserNamespace.Path, recursive: false);
                }
                catch (IOException e)
                {
                    throw new ContainerRuntimeException($"an idmapped copy of layer {lowerDirs[i]}: {e.Message}", e);
                }
                copies.Add(copy);
            }
            mount(copies);
        }
        finally
        {
            foreach (var copy in copies) IdmappedMount.Remove(copy);
            if (Directory.Exists(idmap.Directory) && !Directory.EnumerateFileSystemEntries(idmap.Directory).Any()) Directory.Delete(idmap.Directory);
        }
    }

    /// <summary>Lazily, in case a process still holds it.</summary>
    public void Unmount(string target)
    {
        if (!Directory.Exists(target)) return;
        var bytes = Encoding.UTF8.GetBytes(target + "\0");
        fixed (byte* path = bytes)
        {
            // EINVAL: not a mount point (any more).
            while (LibC.umount2(path, LibC.MNT_DETACH) == 0)
            {
            }
        }
    }

    /// <summary>Made only when a single-layer image needs it, beside <paramref name="sibling"/>.</summary>
    private static Func<string> EmptyLayer(string sibling) => () =>
    {
        var empty = Path.Combine(Path.GetDirectoryName(sibling)!, "empty");
        Directory.CreateDirectory(empty);
        return empty;
    };

    private static int Call(string source, string target, string type, ulong flags, string data)
    {
        var s = Encoding.UTF8.GetBytes(source + "\0");
        var t = Encoding.UTF8.GetBytes(target + "\0");
        var f = Encoding.UTF8.GetBytes(type + "\0");
        var d = Encoding.UTF8.GetBytes(data + "\0");
        fixed (byte* ps = s, pt = t, pf = f, pd = d)
        {
            return LibC.mount(ps, pt, pf, (ulong_t)flags, pd) == 0 ? 0 : LibC.errno;
        }
    }
}
