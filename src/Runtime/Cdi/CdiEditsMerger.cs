using System.Runtime.InteropServices;

namespace Berth.Runtime.Cdi;

/// <summary>Merges the edits of resolved devices into one <see cref="CdiInjection"/>, looking up host device nodes.</summary>
internal static class CdiEditsMerger
{
    public static CdiInjection Merge(IReadOnlyList<(string Name, CdiSpec Spec, CdiDeviceDocument Device)> devices)
    {
        var env = new List<string>();
        var nodes = new List<CdiDeviceNode>();
        var mounts = new List<CdiMountDocument>();
        var hooks = new List<CdiHookDocument>();
        var gids = new List<uint>();
        var netDevices = new List<CdiNetDeviceDocument>();
        CdiIntelRdtDocument? intelRdt = null;
        var specs = new List<string>();

        void Append(string device, CdiEditsDocument? edits)
        {
            if (edits is null) return;
            env.AddRange(edits.Env ?? []);
            foreach (var node in edits.DeviceNodes ?? []) nodes.Add(Fill(device, node));
            mounts.AddRange(edits.Mounts ?? []);
            hooks.AddRange(edits.Hooks ?? []);
            intelRdt = edits.IntelRdt ?? intelRdt;
            gids.AddRange((edits.AdditionalGids ?? []).Where(g => g != 0));
            netDevices.AddRange(edits.NetDevices ?? []);
        }

        foreach (var (name, spec, device) in devices)
        {
            if (!specs.Contains(spec.Path))
            {
                specs.Add(spec.Path);
                Append(name, spec.Document.ContainerEdits);
            }
            Append(name, device.ContainerEdits);
        }
        return new CdiInjection
        {
            Devices = [.. devices.Select(d => d.Name)],
            Env = env,
            DeviceNodes = nodes,
            Mounts = mounts,
            Hooks = hooks,
            IntelRdt = intelRdt,
            AdditionalGids = gids,
            NetDevices = netDevices,
            SpecFiles = specs,
        };
    }

    /// <summary>
    /// A node's missing type, numbers and mode come from the host's node (its hostPath, else its path); one the spec
    /// gives fully (a type, and a major unless a FIFO) needs no host node, though its mode is still taken if one is there.
    /// </summary>
    private static CdiDeviceNode Fill(string device, CdiDeviceNodeDocument node)
    {
        var hostPath = string.IsNullOrEmpty(node.HostPath) ? node.Path : node.HostPath;
        var type = node.Type ?? "";
        var complete = type.Length > 0 && (node.Major != 0 || type == "p");
        var (major, minor, mode) = (node.Major, node.Minor, node.FileMode);
        if (HostNode(hostPath) is var (hostType, hostMajor, hostMinor, hostMode, error) && error is null)
        {
            mode ??= hostMode;
            if (!complete)
            {
                if (hostType is null) throw new CdiDeviceException($"CDI device {device}: host path {hostPath} is not a device node", requestError: false);
                if (type.Length == 0) type = hostType;
                if (type != hostType)
                    throw new CdiDeviceException($"CDI device {device}: {node.Path} is of type {type} in the spec, and the host's {hostPath} of type {hostType}", requestError: false);
                if (type != "p" && major == 0) (major, minor) = (hostMajor, hostMinor);
            }
        }
        else if (!complete)
        {
            throw new CdiDeviceException($"CDI device {device}: host device {hostPath}: {error}", requestError: false);
        }
        var access = node.Permissions is null or "" ? "rwm" : node.Permissions == CdiValidation.NoPermissions ? null : node.Permissions;
        return new CdiDeviceNode
        {
            Path = node.Path,
            HostPath = hostPath,
            Type = type,
            Major = major,
            Minor = minor,
            FileMode = mode,
            Uid = node.Uid,
            Gid = node.Gid,
            CgroupAccess = type is "b" or "c" ? access : null,
        };
    }

    /// <summary>lstat of the host node: its type (b, c, p; null for anything else), numbers and permission bits, or the error.</summary>
    private static (string? Type, long Major, long Minor, uint Mode, string? Error) HostNode(string path)
    {
        if (NodeProbe.Lstat(path, out var errno) is not { } stat) return (null, 0, 0, 0, Marshal.GetPInvokeErrorMessage(errno));
        string? type = ((uint)stat.st_mode & 0xF000) switch { 0x6000 => "b", 0x2000 => "c", 0x1000 => "p", _ => null };
        return (type, (long)NodeProbe.Major(stat.st_rdev), (long)NodeProbe.Minor(stat.st_rdev), (uint)stat.st_mode & 0xFFF, null);
    }
}
