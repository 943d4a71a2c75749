using Berth.Runtime.Cdi;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Containers;

/// <summary>
/// A container's CDI devices at create: resolved against the node's specs, and checked against what its runtime
/// handler and the node can do, before anything is made. No device is ever dropped: one that cannot be given fails
/// the create, InvalidArgument when the request is at fault (unknown, in conflict, malformed), FailedPrecondition
/// when the node is (a missing host node, a runtime without netDevices, no resctrl).
/// </summary>
internal static class ContainerCdi
{
    public static async Task<CdiInjection> ResolveAsync(CdiRegistry registry, RuntimeHandlers handlers, ContainerRequest request)
    {
        if (request.CdiDevices.Count == 0) return CdiInjection.None;
        CdiInjection cdi;
        try
        {
            cdi = registry.Resolve(request.CdiDevices);
        }
        catch (CdiDeviceException e)
        {
            throw e.RequestError ? new ContainerRequestException(e.Message) : new ContainerPreconditionException(e.Message);
        }
        var features = await handlers.FeaturesAsync(request.RuntimeHandler);
        var specs = string.Join(", ", cdi.SpecFiles);
        if (cdi.NetDevices.Count > 0 && features is { NetDevices: false })
            throw new ContainerPreconditionException(
                $"CDI devices {string.Join(", ", cdi.Devices)} move network interfaces into the container (netDevices, in {specs}), which runtime handler '{request.RuntimeHandler}' ({features.Binary}) does not do");
        if (cdi.IntelRdt is { } rdt)
        {
            if ((rdt.Schemata is not null || rdt.EnableMonitoring) && features is { IntelRdtSchemata: false })
                throw new ContainerPreconditionException(
                    $"CDI devices {string.Join(", ", cdi.Devices)} set intelRdt.schemata or enableMonitoring (in {specs}), which runtime handler '{request.RuntimeHandler}' ({features.Binary}) does not know (runtime-spec 1.2.1)");
            if (!File.Exists("/sys/fs/resctrl/schemata"))
                throw new ContainerPreconditionException($"CDI devices {string.Join(", ", cdi.Devices)} set intelRdt (in {specs}), and this node has no resctrl filesystem at /sys/fs/resctrl");
        }
        foreach (var mount in cdi.Mounts)
        {
            if (!mount.ContainerPath.StartsWith('/'))
                throw new ContainerRequestException($"CDI mount {mount.ContainerPath} (in {specs}) is not an absolute path in the container");
        }
        return cdi;
    }

    /// <summary>
    /// In a pod with its own user namespace, a CDI bind mount reaches the pod through an idmapped copy, as a host path
    /// does (runc 1.1 cannot idmap a mount itself), and device nodes are bound in from their host paths, since nobody
    /// in the namespace may make one (the device cgroup still decides what may be opened).
    /// </summary>
    public static CdiInjection ForUserNamespace(CdiInjection cdi, string directory, PodUserNamespace userns)
    {
        cdi = cdi with { DeviceNodes = [.. cdi.DeviceNodes.Select(n => n with { BindMount = true })] };
        if (cdi.Mounts.Count == 0) return cdi;
        var mounts = new List<CdiMountDocument>(cdi.Mounts.Count);
        for (var i = 0; i < cdi.Mounts.Count; i++)
        {
            var mount = cdi.Mounts[i];
            var options = mount.Options ?? [];
            if (mount.Type is not (null or "" or "bind" or "none"))
            {
                mounts.Add(mount);
                continue;
            }
            var copy = Path.Combine(directory, "cdi", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            try
            {
                IdmappedMount.Create(mount.HostPath, copy, userns.Path, recursive: options.Contains("rbind"), readOnly: options.Contains("ro"));
            }
            catch (IOException e)
            {
                throw new ContainerPreconditionException($"CDI mount {mount.HostPath} cannot be idmapped for the pod's user namespace: {e.Message}");
            }
            mounts.Add(mount with { HostPath = copy });
        }
        return cdi with { Mounts = mounts };
    }
}
