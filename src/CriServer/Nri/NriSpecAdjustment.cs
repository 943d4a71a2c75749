using System.Globalization;
using Berth.Nri.Api;
using Berth.Runtime.Containers;
using Berth.Runtime.Spec;

namespace Berth.CriServer.Nri;

/// <summary>
/// Applies NRI plugins' merged adjustment to a container's OCI spec, as NRI's runtime-tools generator does for
/// containerd: entries marked for removal ("-key") go first, then what is set replaces the entry with the same key or
/// is added; mounts end ordered parents first; added devices are allowed in the device cgroup.
/// </summary>
internal static class NriSpecAdjustment
{
    public static SpecAdjustment Apply(OciSpec spec, ContainerAdjustment adjust)
    {
        var process = spec.Process with
        {
            Env = Env(spec.Process.Env, adjust.Env),
            Args = adjust.Args.Count > 0 ? [.. adjust.Args] : spec.Process.Args,
            Rlimits = Rlimits(spec.Process.Rlimits, adjust.Rlimits),
        };
        var linux = spec.Linux;
        if (adjust.Linux is { } l)
        {
            if (l.OomScoreAdj is { } oom) process = process with { OomScoreAdj = checked((int)oom.Value) };
            if (l.IoPriority is { } io) process = process with { IoPriority = new OciIoPriority(IoClass(io.Class), io.Priority) };
            if (l.Scheduler is { } scheduler) process = process with { Scheduler = Scheduler(scheduler) };
            linux = Linux(linux, l);
        }
        var adjusted = spec with
        {
            Process = process,
            Linux = linux,
            Annotations = Annotations(spec.Annotations, adjust.Annotations),
            Mounts = Mounts(spec.Mounts, adjust.Mounts),
            Hooks = Hooks(spec.Hooks, adjust.Hooks),
        };
        return new SpecAdjustment(adjusted, [.. adjust.CDIDevices.Select(d => d.Name)]);
    }

    private static List<string> Env(List<string> env, IEnumerable<KeyValue> adjust)
    {
        var result = new List<string>(env);
        static string NameOf(string entry) => entry.IndexOf('=', StringComparison.Ordinal) is var at and >= 0 ? entry[..at] : entry;
        foreach (var kv in adjust)
        {
            var removal = kv.Key.StartsWith('-');
            var name = removal ? kv.Key[1..] : kv.Key;
            var at = result.FindIndex(e => NameOf(e) == name);
            if (removal)
            {
                if (at >= 0) result.RemoveAt(at);
            }
            else if (at >= 0) result[at] = $"{name}={kv.Value}";
            else result.Add($"{name}={kv.Value}");
        }
        return result;
    }

    private static List<OciRlimit>? Rlimits(List<OciRlimit>? rlimits, IEnumerable<POSIXRlimit> adjust)
    {
        var result = new List<OciRlimit>(rlimits ?? []);
        foreach (var r in adjust)
        {
            result.RemoveAll(x => x.Type == r.Type);
            result.Add(new OciRlimit(r.Type, r.Hard, r.Soft));
        }
        return result.Count > 0 ? result : null;
    }

    private static SortedDictionary<string, string>? Annotations(SortedDictionary<string, string>? annotations, Google.Protobuf.Collections.MapField<string, string> adjust)
    {
        if (adjust.Count == 0) return annotations;
        var result = new SortedDictionary<string, string>(annotations ?? [], StringComparer.Ordinal);
        foreach (var (key, value) in adjust)
        {
            if (key.StartsWith('-')) result.Remove(key[1..]);
            else result[key] = value;
        }
        return result;
    }

    private static List<OciMount> Mounts(List<OciMount> mounts, Google.Protobuf.Collections.RepeatedField<Mount> adjust)
    {
        if (adjust.Count == 0) return mounts;
        var result = new List<OciMount>(mounts);
        foreach (var m in adjust)
        {
            var removal = m.Destination.StartsWith('-');
            var destination = removal ? m.Destination[1..] : m.Destination;
            result.RemoveAll(x => x.Destination == destination);
            if (!removal) result.Add(new OciMount { Destination = destination, Type = m.Type.Length > 0 ? m.Type : "bind", Source = m.Source, Options = [.. m.Options] });
        }
        // Parents before children, a stable sort keeping the order of mounts at one depth.
        return [.. result.OrderBy(x => x.Destination.TrimEnd('/').Count(c => c == '/'))];
    }

    private static OciHooks? Hooks(OciHooks? hooks, Hooks? adjust)
    {
        if (adjust is null) return hooks;
        hooks ??= new OciHooks();
        static List<OciHook>? Stage(List<OciHook>? stage, IReadOnlyCollection<Hook> added) => added.Count == 0
            ? stage
            : [.. stage ?? [], .. added.Select(h => new OciHook { Path = h.Path, Args = h.Args.Count > 0 ? [.. h.Args] : null, Env = h.Env.Count > 0 ? [.. h.Env] : null, Timeout = h.Timeout is { } t ? (int)t.Value : null })];
        return hooks with
        {
            Prestart = Stage(hooks.Prestart, adjust.Prestart),
            CreateRuntime = Stage(hooks.CreateRuntime, adjust.CreateRuntime),
            CreateContainer = Stage(hooks.CreateContainer, adjust.CreateContainer),
            StartContainer = Stage(hooks.StartContainer, adjust.StartContainer),
            Poststart = Stage(hooks.Poststart, adjust.Poststart),
            Poststop = Stage(hooks.Poststop, adjust.Poststop),
        };
    }

    private static OciLinux Linux(OciLinux linux, LinuxContainerAdjustment adjust)
    {
        var devices = new List<OciDevice>(linux.Devices ?? []);
        var rules = new List<OciDeviceCgroup>(linux.Resources?.Devices ?? []);
        foreach (var d in adjust.Devices)
        {
            var removal = d.Path.StartsWith('-');
            var path = removal ? d.Path[1..] : d.Path;
            devices.RemoveAll(x => x.Path == path);
            if (removal) continue;
            devices.Add(new OciDevice { Path = path, Type = d.Type, Major = d.Major, Minor = d.Minor, FileMode = d.FileMode?.Value, Uid = d.Uid?.Value, Gid = d.Gid?.Value });
            rules.Add(new OciDeviceCgroup { Allow = true, Type = d.Type, Major = d.Major, Minor = d.Minor, Access = "rwm" });
        }
        var namespaces = new List<OciNamespace>(linux.Namespaces);
        foreach (var n in adjust.Namespaces)
        {
            var removal = n.Type.StartsWith('-');
            var type = removal ? n.Type[1..] : n.Type;
            namespaces.RemoveAll(x => x.Type == type);
            if (!removal) namespaces.Add(new OciNamespace(type, n.Path.Length > 0 ? n.Path : null));
        }
        var sysctl = linux.Sysctl is null ? new SortedDictionary<string, string>(StringComparer.Ordinal) : new SortedDictionary<string, string>(linux.Sysctl, StringComparer.Ordinal);
        foreach (var (key, value) in adjust.Sysctl)
        {
            if (key.StartsWith('-')) sysctl.Remove(key[1..]);
            else sysctl[key] = value;
        }
        var netDevices = linux.NetDevices is null ? new SortedDictionary<string, OciNetDevice>(StringComparer.Ordinal) : new SortedDictionary<string, OciNetDevice>(linux.NetDevices, StringComparer.Ordinal);
        foreach (var (key, value) in adjust.NetDevices)
        {
            if (key.StartsWith('-')) netDevices.Remove(key[1..]);
            else netDevices[key] = new OciNetDevice(value.Name);
        }
        var resources = linux.Resources ?? new OciResources();
        if (adjust.Resources is { } r) resources = Resources(resources, r);
        return linux with
        {
            Devices = devices.Count > 0 ? devices : null,
            Resources = resources with { Devices = rules.Count > 0 ? rules : null },
            Namespaces = namespaces,
            Sysctl = sysctl.Count > 0 ? sysctl : null,
            NetDevices = netDevices.Count > 0 ? netDevices : null,
            CgroupsPath = adjust.CgroupsPath.Length > 0 ? adjust.CgroupsPath : linux.CgroupsPath,
            Seccomp = adjust.SeccompPolicy is { } seccomp ? Seccomp(seccomp) : linux.Seccomp,
            IntelRdt = adjust.Rdt is { } rdt ? Rdt(linux.IntelRdt, rdt) : linux.IntelRdt,
            MemoryPolicy = adjust.MemoryPolicy is { } policy
                ? new OciMemoryPolicy { Mode = OriginalName(policy.Mode), Nodes = policy.Nodes.Length > 0 ? policy.Nodes : null, Flags = policy.Flags.Count > 0 ? [.. policy.Flags.Select(f => OriginalName(f))] : null }
                : linux.MemoryPolicy,
        };
    }

    private static OciResources Resources(OciResources resources, LinuxResources r)
    {
        if (r.BlockioClass is { Value.Length: > 0 } blockio)
            throw new ContainerPreconditionException($"NRI plugins set block I/O class '{blockio.Value}', and Berth has no block I/O classes configured");
        if (r.RdtClass is { Value.Length: > 0 } rdtClass)
            throw new ContainerPreconditionException($"NRI plugins set RDT class '{rdtClass.Value}', and Berth has no RDT classes configured");
        var memory = resources.Memory ?? new OciMemory();
        if (r.Memory is { } m)
        {
            memory = memory with
            {
                Limit = m.Limit?.Value ?? memory.Limit, Reservation = m.Reservation?.Value ?? memory.Reservation, Swap = m.Swap?.Value ?? memory.Swap,
                Kernel = m.Kernel?.Value ?? memory.Kernel, KernelTcp = m.KernelTcp?.Value ?? memory.KernelTcp, Swappiness = m.Swappiness?.Value ?? memory.Swappiness,
                DisableOomKiller = m.DisableOomKiller?.Value ?? memory.DisableOomKiller, UseHierarchy = m.UseHierarchy?.Value ?? memory.UseHierarchy,
            };
        }
        var cpu = resources.Cpu ?? new OciCpu();
        if (r.Cpu is { } c)
        {
            cpu = cpu with
            {
                Shares = c.Shares?.Value ?? cpu.Shares, Quota = c.Quota?.Value ?? cpu.Quota, Period = c.Period?.Value ?? cpu.Period,
                RealtimeRuntime = c.RealtimeRuntime?.Value ?? cpu.RealtimeRuntime, RealtimePeriod = c.RealtimePeriod?.Value ?? cpu.RealtimePeriod,
                Cpus = c.Cpus.Length > 0 ? c.Cpus : cpu.Cpus, Mems = c.Mems.Length > 0 ? c.Mems : cpu.Mems,
            };
        }
        var hugepages = new List<OciHugepageLimit>(resources.HugepageLimits ?? []);
        foreach (var h in r.HugepageLimits)
        {
            hugepages.RemoveAll(x => x.PageSize == h.PageSize);
            hugepages.Add(new OciHugepageLimit(h.PageSize, h.Limit));
        }
        var unified = resources.Unified is null ? new SortedDictionary<string, string>(StringComparer.Ordinal) : new SortedDictionary<string, string>(resources.Unified, StringComparer.Ordinal);
        foreach (var (key, value) in r.Unified) unified[key] = value;
        return resources with
        {
            Memory = memory == new OciMemory() ? resources.Memory : memory,
            Cpu = cpu == new OciCpu() ? resources.Cpu : cpu,
            Pids = r.Pids is { } pids ? new OciPids(pids.Limit) : resources.Pids,
            HugepageLimits = hugepages.Count > 0 ? hugepages : null,
            Unified = unified.Count > 0 ? unified : null,
        };
    }

    private static OciSeccomp Seccomp(LinuxSeccomp seccomp) => new()
    {
        DefaultAction = seccomp.DefaultAction,
        DefaultErrnoRet = seccomp.DefaultErrno?.Value,
        Architectures = seccomp.Architectures.Count > 0 ? [.. seccomp.Architectures] : null,
        Flags = seccomp.Flags.Count > 0 ? [.. seccomp.Flags] : null,
        ListenerPath = seccomp.ListenerPath.Length > 0 ? seccomp.ListenerPath : null,
        ListenerMetadata = seccomp.ListenerMetadata.Length > 0 ? seccomp.ListenerMetadata : null,
        Syscalls = [.. seccomp.Syscalls.Select(s => new OciSyscall
        {
            Names = [.. s.Names], Action = s.Action, ErrnoRet = s.ErrnoRet?.Value,
            Args = s.Args.Count > 0 ? [.. s.Args.Select(a => new OciSeccompArg { Index = a.Index, Value = a.Value, ValueTwo = a.ValueTwo, Op = a.Op })] : null,
        })],
    };

    private static OciIntelRdt? Rdt(OciIntelRdt? current, LinuxRdt rdt)
    {
        if (rdt.Remove) current = null;
        if (rdt.ClosId is null && rdt.Schemata is null && rdt.EnableMonitoring is null) return current;
        current ??= new OciIntelRdt();
        return current with
        {
            ClosId = rdt.ClosId?.Value ?? current.ClosId,
            Schemata = rdt.Schemata is { } schemata ? [.. schemata.Value] : current.Schemata,
            EnableMonitoring = rdt.EnableMonitoring?.Value ?? current.EnableMonitoring,
        };
    }

    private static OciScheduler Scheduler(LinuxScheduler s) => new()
    {
        Policy = OriginalName(s.Policy),
        Nice = s.Nice, Priority = s.Priority,
        Flags = s.Flags.Count > 0 ? [.. s.Flags.Select(f => OriginalName(f))] : null,
        Runtime = s.Runtime > 0 ? s.Runtime : null, Deadline = s.Deadline > 0 ? s.Deadline : null, Period = s.Period > 0 ? s.Period : null,
    };

    private static string IoClass(IOPrioClass c) => OriginalName(c);

    /// <summary>An enum value's name as api.proto spells it (SCHED_FIFO, IOPRIO_CLASS_RT), which is what runtime-spec uses too.</summary>
    private static string OriginalName<T>(T value) where T : struct, Enum =>
        ApiReflection.Descriptor.EnumTypes.First(e => e.ClrType == typeof(T)).FindValueByNumber(Convert.ToInt32(value, CultureInfo.InvariantCulture)).Name;
}
