using System.Runtime.InteropServices;
using k8s.Models;
using Berth.Cri.V1;

namespace Berth.Cli.Pods;

/// <summary>
/// The pod's volumes on this node, as the kubelet keeps them under its pod directory: emptyDir as a directory (a
/// tmpfs for <c>medium: Memory</c>) owned by fsGroup when set, hostPath checked or created by its type, image volumes
/// left to the runtime (a CRI mount with <c>image</c>). Then each container's volumeMounts as CRI mounts.
/// </summary>
internal sealed class PodVolumes(string podDirectory)
{
    public string Directory { get; } = podDirectory;

    private string EmptyDirPath(string name) => Path.Combine(Directory, "volumes", "empty-dir", name);

    public void Prepare(V1PodSpec spec)
    {
        var volumes = spec.Volumes ?? [];
        for (var i = 0; i < volumes.Count; i++)
        {
            var volume = volumes[i];
            var field = $"spec.volumes[{i}]";
            var kinds = (volume.EmptyDir is null ? 0 : 1) + (volume.HostPath is null ? 0 : 1) + (volume.Image is null ? 0 : 1);
            if (kinds != 1) throw new ManifestException($"{field}: a volume needs exactly one of emptyDir, hostPath or image");
            if (volume.EmptyDir is { } emptyDir) PrepareEmptyDir(volume.Name, emptyDir, spec.SecurityContext?.FsGroup, field);
            else if (volume.HostPath is { } hostPath) PrepareHostPath(hostPath, $"{field}.hostPath");
        }
    }

    private void PrepareEmptyDir(string name, V1EmptyDirVolumeSource source, long? fsGroup, string field)
    {
        var path = EmptyDirPath(name);
        System.IO.Directory.CreateDirectory(path);
        switch (source.Medium)
        {
            case null or "":
                break;
            case "Memory":
                var options = source.SizeLimit is { } limit ? $"size={(long)limit.ToDecimal()},mode=0777" : "mode=0777";
                if (mount("tmpfs", path, "tmpfs", MsNoSuid | MsNoDev, options) != 0)
                    throw new CliException($"{field}.emptyDir: can't mount a tmpfs on {path}: {Marshal.GetLastPInvokeErrorMessage()}");
                break;
            default:
                throw new ManifestException($"{field}.emptyDir.medium: '{source.Medium}' is not supported (\"\" or Memory)");
        }
        // The kubelet makes emptyDirs world-writable; with fsGroup the group owns them and new files inherit it.
        File.SetUnixFileMode(path, (UnixFileMode)0x1FF);
        if (fsGroup is { } group)
        {
            if (lchown(path, uint.MaxValue, (uint)group) != 0) throw new CliException($"{field}: can't give {path} to group {group}: {Marshal.GetLastPInvokeErrorMessage()}");
            File.SetUnixFileMode(path, (UnixFileMode)0x1FF | UnixFileMode.SetGroup);
        }
    }

    private static void PrepareHostPath(V1HostPathVolumeSource source, string field)
    {
        if (!Path.IsPathRooted(source.Path)) throw new ManifestException($"{field}.path: '{source.Path}' is not an absolute path");
        var info = new FileInfo(source.Path);
        var exists = info.Exists || System.IO.Directory.Exists(source.Path);
        var isDirectory = System.IO.Directory.Exists(source.Path);
        string? problem = source.Type switch
        {
            null or "" => null,
            "DirectoryOrCreate" when !exists => Create(() => System.IO.Directory.CreateDirectory(source.Path, (UnixFileMode)0x1ED)),
            "DirectoryOrCreate" or "Directory" => isDirectory ? null : "is not a directory",
            "FileOrCreate" when !exists => Create(() => File.Create(source.Path).Dispose()),
            "FileOrCreate" or "File" => exists && !isDirectory && Kind(source.Path) == FileKind.Regular ? null : "is not a file",
            "Socket" => Kind(source.Path) == FileKind.Socket ? null : "is not a socket",
            "CharDevice" => Kind(source.Path) == FileKind.CharDevice ? null : "is not a character device",
            "BlockDevice" => Kind(source.Path) == FileKind.BlockDevice ? null : "is not a block device",
            _ => throw new ManifestException($"{field}.type: '{source.Type}' is not a hostPath type"),
        };
        if (problem is not null) throw new ManifestException($"{field}: {source.Path} {problem} (type {source.Type})");
    }

    private static string? Create(Action create)
    {
        try
        {
            create();
            return null;
        }
        catch (IOException e)
        {
            return $"can't be created: {e.Message}";
        }
    }

    private enum FileKind { Missing, Regular, Directory, Socket, CharDevice, BlockDevice, Other }


    private static unsafe FileKind Kind(string path)
    {
        Tmds.Linux.stat st;
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            if (Tmds.Linux.LibC.stat(p, &st) != 0) return FileKind.Missing;
        }
        return ((uint)st.st_mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xC000 => FileKind.Socket,
            0x2000 => FileKind.CharDevice,
            0x6000 => FileKind.BlockDevice,
            _ => FileKind.Other,
        };
    }

    /// <summary>The container's volumeMounts as CRI mounts.</summary>
    public List<Mount> Mounts(V1PodSpec spec, V1Container container, string where)
    {
        var mounts = new List<Mount>();
        var list = container.VolumeMounts ?? [];
        for (var i = 0; i < list.Count; i++)
        {
            var volumeMount = list[i];
            var field = $"{where}.volumeMounts[{i}]";
            var volume = spec.Volumes?.FirstOrDefault(v => v.Name == volumeMount.Name)
                         ?? throw new ManifestException($"{field}.name: no volume '{volumeMount.Name}' in spec.volumes");
            if (!Path.IsPathRooted(volumeMount.MountPath)) throw new ManifestException($"{field}.mountPath: '{volumeMount.MountPath}' is not absolute");
            var subPath = volumeMount.SubPath ?? "";
            if (subPath.Length > 0 && (Path.IsPathRooted(subPath) || subPath.Split('/').Contains("..")))
                throw new ManifestException($"{field}.subPath: '{subPath}' must be a relative path without '..'");
            var mount = new Mount
            {
                ContainerPath = volumeMount.MountPath,
                Readonly = volumeMount.ReadOnlyProperty == true,
                Propagation = volumeMount.MountPropagation switch
                {
                    null or "None" => MountPropagation.PropagationPrivate,
                    "HostToContainer" => MountPropagation.PropagationHostToContainer,
                    "Bidirectional" when container.SecurityContext?.Privileged == true => MountPropagation.PropagationBidirectional,
                    "Bidirectional" => throw new ManifestException($"{field}.mountPropagation: Bidirectional needs a privileged container"),
                    var other => throw new ManifestException($"{field}.mountPropagation: '{other}' is not None, HostToContainer or Bidirectional"),
                },
            };
            if (volume.Image is { } image)
            {
                mount.Image = new ImageSpec { Image = image.Reference };
                mount.ImageSubPath = subPath;
                mount.Readonly = true; // image volumes are read-only whatever readOnly says (KEP-4639)
            }
            else
            {
                var root = volume.EmptyDir is not null ? EmptyDirPath(volume.Name) : volume.HostPath!.Path;
                mount.HostPath = subPath.Length == 0 ? root : Path.Combine(root, subPath);
                if (subPath.Length > 0 && !System.IO.Directory.Exists(mount.HostPath) && !File.Exists(mount.HostPath))
                    System.IO.Directory.CreateDirectory(mount.HostPath);
            }
            mounts.Add(mount);
        }
        return mounts;
    }

    /// <summary>Unmounts memory-backed emptyDirs and removes the pod's directory (never anything a hostPath names).</summary>
    public void Remove()
    {
        var emptyDirs = Path.Combine(Directory, "volumes", "empty-dir");
        if (System.IO.Directory.Exists(emptyDirs))
        {
            foreach (var path in System.IO.Directory.EnumerateDirectories(emptyDirs))
                while (umount2(path, MntDetach) == 0) { }
        }
        if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true);
    }

    private const ulong MsNoSuid = 2;
    private const ulong MsNoDev = 4;
    private const int MntDetach = 2;

    [DllImport("libc", SetLastError = true)]
    private static extern int mount(string source, string target, string type, ulong flags, string data);

    [DllImport("libc", SetLastError = true)]
    private static extern int umount2(string target, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int lchown(string path, uint owner, uint group);
}
