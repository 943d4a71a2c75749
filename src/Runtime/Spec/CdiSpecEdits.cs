using Berth.Runtime.Cdi;

namespace Berth.Runtime.Spec;

/// <summary>
/// Applies what a container's CDI devices ask (<see cref="CdiInjection"/>) to its OCI spec, as CDI's spec defines the
/// edits: environment variables set (an existing name replaced in place), device nodes added (replacing one at the
/// same path) and allowed in the device cgroup, mounts added (replacing one at the same place) and all mounts then
/// ordered parents first, hooks added to their stages, Intel RDT set, additional groups and network devices added.
/// A pure function, as <see cref="OciSpecBuilder"/> is.
/// </summary>
internal static class CdiSpecEdits
{
    public static OciSpec Apply(OciSpec spec, CdiInjection cdi)
    {
        if (cdi.Devices.Count == 0) return spec;
        var user = spec.Process.User;
        var process = spec.Process with
        {
            Env = Environment(spec.Process.Env, cdi.Env),
            User = cdi.AdditionalGids.Count == 0 ? user : user with { AdditionalGids = [.. (user.AdditionalGids ?? []).Concat(cdi.AdditionalGids).Distinct()] },
        };
        var linux = spec.Linux;
        var devices = linux.Devices ?? [];
        var rules = linux.Resources?.Devices ?? [];
        var mounts = spec.Mounts;
        foreach (var node in cdi.DeviceNodes)
        {
            devices = [.. devices.Where(d => d.Path != node.Path)];
            if (node.CgroupAccess is { } access)
                rules = [.. rules, new OciDeviceCgroup { Allow = true, Type = node.Type, Major = node.Major, Minor = node.Minor, Access = access }];
            if (node.BindMount)
            {
                mounts = [.. mounts.Where(m => m.Destination != node.Path), new OciMount { Destination = node.Path, Type = "bind", Source = node.HostPath, Options = ["bind"] }];
                continue;
            }
            devices.Add(new OciDevice
            {
                Path = node.Path,
                Type = node.Type,
                Major = node.Major,
                Minor = node.Minor,
                FileMode = node.FileMode,
                // A node the spec gives no owner belongs to the container's user, as CDI does it, so a non-root process can open it.
                Uid = node.Uid ?? (user.Uid > 0 ? user.Uid : null),
                Gid = node.Gid ?? (user.Gid > 0 ? user.Gid : null),
            });
        }

        foreach (var mount in cdi.Mounts)
        {
            mounts = [.. mounts.Where(m => m.Destination != mount.ContainerPath), Mount(mount)];
        }
        // Parents before children; a stable sort keeps the order of mounts at one depth.
        mounts = [.. mounts.OrderBy(m => Depth(m.Destination))];

        return spec with
        {
            Process = process,
            Mounts = mounts,
            Hooks = Hooks(spec.Hooks, cdi.Hooks),
            Linux = linux with
            {
                Devices = devices.Count > 0 ? devices : null,
                Resources = linux.Resources is { } resources ? resources with { Devices = rules } : null,
                IntelRdt = cdi.IntelRdt is { } rdt
                    ? new OciIntelRdt
                    {
                        ClosId = rdt.ClosId, L3CacheSchema = rdt.L3CacheSchema, MemBwSchema = rdt.MemBwSchema,
                        Schemata = rdt.Schemata, EnableMonitoring = rdt.EnableMonitoring ? true : null,
                    }
                    : linux.IntelRdt,
                NetDevices = cdi.NetDevices.Count == 0
                    ? linux.NetDevices
                    : new SortedDictionary<string, OciNetDevice>(
                        cdi.NetDevices.ToDictionary(d => d.HostInterfaceName, d => new OciNetDevice(d.Name), StringComparer.Ordinal), StringComparer.Ordinal),
            },
        };
    }

    private static List<string> Environment(List<string> env, IReadOnlyList<string> added)
    {
        var result = new List<string>(env);
        foreach (var entry in added)
        {
            var name = entry[..(entry.IndexOf('=', StringComparison.Ordinal) + 1)];
            var at = result.FindIndex(e => e.StartsWith(name, StringComparison.Ordinal));
            if (at >= 0) result[at] = entry;
            else result.Add(entry);
        }
        return result;
    }

    /// <summary>A bind mount (the type CDI specs mostly leave out, or name "none") gets the bind flag if the spec gave none.</summary>
    private static OciMount Mount(CdiMountDocument mount)
    {
        var options = new List<string>(mount.Options ?? []);
        var type = string.IsNullOrEmpty(mount.Type) ? "bind" : mount.Type;
        if (type is "bind" or "none" && !options.Contains("bind") && !options.Contains("rbind")) options.Add("bind");
        return new OciMount { Destination = mount.ContainerPath, Type = type, Source = mount.HostPath, Options = options };
    }

    private static int Depth(string path) => path.TrimEnd('/').Count(c => c == '/');

    private static OciHooks? Hooks(OciHooks? hooks, IReadOnlyList<CdiHookDocument> added)
    {
        if (added.Count == 0) return hooks;
        hooks ??= new OciHooks();
        List<OciHook>? Stage(List<OciHook>? stage, string name)
        {
            var more = added.Where(h => h.HookName == name).Select(h => new OciHook { Path = h.Path, Args = h.Args, Env = h.Env, Timeout = h.Timeout }).ToList();
            return more.Count == 0 ? stage : [.. stage ?? [], .. more];
        }
        return hooks with
        {
            Prestart = Stage(hooks.Prestart, "prestart"),
            CreateRuntime = Stage(hooks.CreateRuntime, "createRuntime"),
            CreateContainer = Stage(hooks.CreateContainer, "createContainer"),
            StartContainer = Stage(hooks.StartContainer, "startContainer"),
            Poststart = Stage(hooks.Poststart, "poststart"),
            Poststop = Stage(hooks.Poststop, "poststop"),
        };
    }
}
