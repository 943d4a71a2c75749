using Berth.Sandbox.Native;

namespace Berth.Sandbox;

/// <summary>
/// The pod's /dev/shm: one tmpfs that all its containers bind-mount, so POSIX shared memory is shared in the pod
/// and bounded. A pod in the node's IPC namespace has none; its containers take the node's /dev/shm.
/// </summary>
internal static class PodShm
{
    public const string Directory = "shm";

    /// <summary>64 MiB, the size Docker, containerd and CRI-O give a pod's /dev/shm.</summary>
    private const string Options = "mode=1777,size=65536k";

    /// <summary>
    /// Mounts it; with <paramref name="owner"/> (a pod user namespace's root) its root directory is that ID's, so the
    /// pod's root owns it without an idmapped mount (tmpfs takes one only from Linux 6.3).
    /// </summary>
    public static string Create(string sandboxDirectory, (uint Uid, uint Gid)? owner)
    {
        var path = Path.Combine(sandboxDirectory, Directory);
        System.IO.Directory.CreateDirectory(path);
        var options = owner is var (uid, gid) ? FormattableString.Invariant($"{Options},uid={uid},gid={gid}") : Options;
        if (Linux.Mount("shm", path, "tmpfs", Linux.MsNoSuid | Linux.MsNoDev | Linux.MsNoExec, options) != 0)
            throw Linux.Error("mount tmpfs", path, Linux.LastError);
        return path;
    }

    /// <summary>Unmounts it; missing or already unmounted is fine (idempotent).</summary>
    public static void Remove(string sandboxDirectory)
    {
        var path = Path.Combine(sandboxDirectory, Directory);
        if (!System.IO.Directory.Exists(path)) return;
        // EINVAL: not mounted (a crash before the mount, or a second teardown).
        if (Linux.Umount2(path, Linux.MntDetach) != 0 && Linux.LastError is not 22 and not 2)
            throw Linux.Error("umount", path, Linux.LastError);
        System.IO.Directory.Delete(path);
    }
}
