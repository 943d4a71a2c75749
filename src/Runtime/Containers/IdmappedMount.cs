using System.Runtime.InteropServices;
using System.Text;
using Berth.Native;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Containers;

/// <summary>
/// Idmapped mounts (Linux 5.12+; on overlayfs layers 5.19+): a copy of a directory or file through which its owners
/// appear shifted by a user namespace's maps. A pod in its own user namespace then sees the node's ID 0 as its root, and
/// what its root writes is owned by the node's 0, with nothing chowned. runc 1.1 has no <c>idmap</c> mount option, so
/// Berth makes each copy itself (open_tree, mount_setattr with MOUNT_ATTR_IDMAP, move_mount) before the runtime sees
/// the bundle, and all of a container's live under one directory of its own, where teardown finds them.
/// </summary>
internal static unsafe partial class IdmappedMount
{
    private const int AtFdCwd = -100, AtEmptyPath = 0x1000, AtRecursive = 0x8000;
    private const uint OpenTreeClone = 1, OpenTreeCloexec = 0x80000;
    private const uint MoveMountFEmptyPath = 4;
    private const ulong MountAttrRdonly = 0x1, MountAttrIdmap = 0x100000;
    private const long SysOpenTree = 428, SysMoveMount = 429, SysMountSetattr = 442;
    private const int MntDetach = 2;

    /// <summary>"" for the *at calls with AT_EMPTY_PATH; fixed over an empty span would give a null pointer, which is EFAULT.</summary>
    private static readonly byte[] EmptyPath = [0];

    [StructLayout(LayoutKind.Sequential)]
    private struct MountAttr
    {
        public ulong AttrSet;
        public ulong AttrClear;
        public ulong Propagation;
        public ulong UsernsFd;
    }

    /// <summary>
    /// Makes <paramref name="target"/> an idmapped copy of <paramref name="source"/> (with its submounts when recursive).
    /// A read-only copy is read-only in the node's mount namespace, so in the container's, which is the user namespace's,
    /// the kernel locks it so: even CAP_SYS_ADMIN there cannot remount it writable.
    /// </summary>
    public static void Create(string source, string target, string userNamespacePath, bool recursive, bool readOnly = false)
    {
        var tree = Clone(source, userNamespacePath, recursive, readOnly);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (Directory.Exists(source)) Directory.CreateDirectory(target);
            else File.WriteAllBytes(target, []);
            var path = Encoding.UTF8.GetBytes(target + "\0");
            fixed (byte* empty = EmptyPath, to = path)
            {
                if (Syscall(SysMoveMount, tree, (nint)empty, AtFdCwd, (nint)to, (nint)MoveMountFEmptyPath) != 0)
                    throw Error("move_mount", target, Marshal.GetLastPInvokeError());
            }
        }
        finally
        {
            _ = Descriptors.Close(tree);
        }
    }

    /// <summary>Whether a directory's filesystem takes idmapped mounts: a detached copy is made with the maps and dropped.</summary>
    public static bool IsSupported(string directory, string userNamespacePath)
    {
        try
        {
            _ = Descriptors.Close(Clone(directory, userNamespacePath, recursive: false, readOnly: false));
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Unmounts and deletes every copy under <paramref name="directory"/> (a group per directory below it); idempotent.</summary>
    public static void RemoveAll(string directory)
    {
        if (!Directory.Exists(directory)) return;
        foreach (var group in Directory.EnumerateDirectories(directory))
        {
            foreach (var copy in Directory.EnumerateFileSystemEntries(group)) Remove(copy);
            Directory.Delete(group);
        }
        Directory.Delete(directory);
    }

    /// <summary>Unmounts one copy (lazily, as a process may still hold it) and deletes its mount point.</summary>
    public static void Remove(string copy)
    {
        var path = Encoding.UTF8.GetBytes(copy + "\0");
        fixed (byte* p = path)
        {
            // EINVAL once it is no mount point (any more).
            while (Tmds.Linux.LibC.umount2(p, MntDetach) == 0)
            {
            }
        }
        if (Directory.Exists(copy)) Directory.Delete(copy);
        else File.Delete(copy);
    }

    private static int Clone(string source, string userNamespacePath, bool recursive, bool readOnly)
    {
        var userns = Descriptors.Open(userNamespacePath, Descriptors.ORdOnly | Descriptors.OCloExec);
        if (userns < 0) throw Error("open", userNamespacePath, Descriptors.LastError);
        try
        {
            var path = Encoding.UTF8.GetBytes(source + "\0");
            int tree;
            fixed (byte* from = path)
            {
                tree = (int)Syscall(SysOpenTree, AtFdCwd, (nint)from, (nint)(OpenTreeClone | OpenTreeCloexec | (recursive ? (uint)AtRecursive : 0)));
            }
            if (tree < 0) throw Error("open_tree", source, Marshal.GetLastPInvokeError());
            var attr = new MountAttr { AttrSet = MountAttrIdmap | (readOnly ? MountAttrRdonly : 0), UsernsFd = (ulong)userns };
            fixed (byte* empty = EmptyPath)
            {
                if (Syscall(SysMountSetattr, tree, (nint)empty, AtEmptyPath | (recursive ? AtRecursive : 0), (nint)(&attr), sizeof(MountAttr)) != 0)
                {
                    var error = Marshal.GetLastPInvokeError();
                    _ = Descriptors.Close(tree);
                    // EINVAL: the filesystem (or, recursively, one below it) takes no idmapped mounts.
                    throw Error("mount_setattr MOUNT_ATTR_IDMAP", source, error);
                }
            }
            return tree;
        }
        finally
        {
            _ = Descriptors.Close(userns);
        }
    }

    private static IOException Error(string call, string path, int error) =>
        new($"{call} {path}: {Marshal.GetPInvokeErrorMessage(error)} (errno {error})") { HResult = error };

    // syscall(2) is variadic; its x86-64 assembly takes the arguments from the integer registers, as a fixed signature passes them.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5);

    private static long Syscall(long number, nint a1, nint a2, nint a3) => Syscall(number, a1, a2, a3, 0, 0);
}

/// <summary>The pod user namespace whose maps a mount's layers take, and the directory their idmapped copies go to for the moment of the mount.</summary>
internal sealed record LayerIdmap(PodUserNamespace UserNamespace, string Directory);
