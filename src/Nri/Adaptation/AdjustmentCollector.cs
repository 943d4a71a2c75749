using Berth.Nri.Api;

namespace Berth.Nri.Adaptation;

/// <summary>
/// Merges what each plugin answers to CreateContainer, UpdateContainer or StopContainer, in plugin order, into one
/// answer under NRI's ownership rules (<see cref="FieldOwners"/>), as containerd/nri's adaptation result does: removal
/// markers (a key prefixed "-") take out what an earlier plugin or the container had, hooks accumulate, and every
/// other field or entry has one owner.
/// </summary>
internal sealed class AdjustmentCollector(string containerId)
{
    private readonly FieldOwners _owners = new();
    private readonly Keyed<string> _annotations = new();
    private readonly Keyed<Mount> _mounts = new();
    private readonly Keyed<string> _env = new();
    private readonly Keyed<LinuxDevice> _devices = new();
    private readonly Keyed<CDIDevice> _cdiDevices = new();
    private readonly Keyed<POSIXRlimit> _rlimits = new();
    private readonly Keyed<LinuxNamespace> _namespaces = new();
    private readonly Keyed<string> _sysctl = new();
    private readonly Keyed<LinuxNetDevice> _netDevices = new();
    private readonly Hooks _hooks = new();
    private readonly LinuxContainerAdjustment _linux = new();
    private readonly Dictionary<string, ContainerUpdate> _updates = [];
    private readonly List<ContainerEviction> _evictions = [];
    private LinuxResources? _resources;
    private List<string>? _args;

    public void Apply(CreateContainerResponse? response, string plugin)
    {
        if (response is null) return;
        if (response.Adjust is { } adjust) Adjust(adjust, plugin);
        Update(response.Update, plugin);
        _evictions.AddRange(response.Evict);
    }

    public void Apply(UpdateContainerResponse? response, string plugin)
    {
        if (response is null) return;
        Update(response.Update, plugin);
        _evictions.AddRange(response.Evict);
    }

    public void Apply(StopContainerResponse? response, string plugin)
    {
        if (response is not null) Update(response.Update, plugin);
    }

    /// <summary>The merged adjustment: removal-marked entries first in each field, then what is set.</summary>
    public ContainerAdjustment Adjustment()
    {
        var adjust = new ContainerAdjustment { Linux = _linux.Clone() };
        if (_hooks.CalculateSize() > 0) adjust.Hooks = _hooks;
        foreach (var (key, value) in _annotations.Removed) adjust.Annotations[Removal(key)] = "";
        foreach (var (key, value) in _annotations.Set) adjust.Annotations[key] = value;
        adjust.Mounts.AddRange(_mounts.Removed.Select(e => new Mount { Destination = Removal(e.Key) }));
        adjust.Mounts.AddRange(_mounts.Set.Select(e => e.Value));
        adjust.Env.AddRange(_env.Removed.Select(e => new KeyValue { Key = Removal(e.Key) }));
        adjust.Env.AddRange(_env.Set.Select(e => new KeyValue { Key = e.Key, Value = e.Value }));
        adjust.Rlimits.AddRange(_rlimits.Set.Select(e => e.Value));
        adjust.CDIDevices.AddRange(_cdiDevices.Set.Select(e => e.Value));
        if (_args is not null) adjust.Args.AddRange(_args);
        var linux = adjust.Linux;
        linux.Devices.AddRange(_devices.Removed.Select(e => new LinuxDevice { Path = Removal(e.Key) }));
        linux.Devices.AddRange(_devices.Set.Select(e => e.Value));
        linux.Namespaces.AddRange(_namespaces.Removed.Select(e => new LinuxNamespace { Type = Removal(e.Key) }));
        linux.Namespaces.AddRange(_namespaces.Set.Select(e => e.Value));
        foreach (var (key, _) in _sysctl.Removed) linux.Sysctl[Removal(key)] = "";
        foreach (var (key, value) in _sysctl.Set) linux.Sysctl[key] = value;
        foreach (var (key, _) in _netDevices.Removed) linux.NetDevices[Removal(key)] = new LinuxNetDevice();
        foreach (var (key, value) in _netDevices.Set) linux.NetDevices[key] = value;
        if (_resources is not null) linux.Resources = _resources;
        return adjust;
    }

    public OwningPlugins Owners => _owners.ToProto();

    /// <summary>Updates to containers, merged per container; the container of the event included, if a plugin updated it.</summary>
    public IReadOnlyList<ContainerUpdate> Updates => [.. _updates.Values];

    public IReadOnlyList<ContainerEviction> Evictions => _evictions;

    private void Adjust(ContainerAdjustment adjust, string plugin)
    {
        var id = containerId;
        Compound(Field.Annotations, _annotations, adjust.Annotations.Select(a => (a.Key, a.Value)), plugin);
        Compound(Field.Mounts, _mounts, adjust.Mounts.Select(m => (m.Destination, m)), plugin);
        Compound(Field.Env, _env, adjust.Env.Select(e => (e.Key, e.Value)), plugin);
        if (adjust.Args.Count > 0)
        {
            // A leading "" says the plugin replaces, rather than sets anew, what an earlier plugin set.
            var args = adjust.Args.ToList();
            if (args[0].Length == 0)
            {
                _owners.Clear(id, Field.Args, "", plugin);
                args.RemoveAt(0);
            }
            _owners.Claim(id, Field.Args, plugin);
            _args = args;
        }
        if (adjust.Hooks is { } hooks)
        {
            _hooks.Prestart.AddRange(hooks.Prestart);
            _hooks.CreateRuntime.AddRange(hooks.CreateRuntime);
            _hooks.CreateContainer.AddRange(hooks.CreateContainer);
            _hooks.StartContainer.AddRange(hooks.StartContainer);
            _hooks.Poststart.AddRange(hooks.Poststart);
            _hooks.Poststop.AddRange(hooks.Poststop);
        }
        Compound(Field.Rlimits, _rlimits, adjust.Rlimits.Select(r => (r.Type, r)), plugin);
        Compound(Field.CdiDevices, _cdiDevices, adjust.CDIDevices.Select(d => (d.Name, d)), plugin);
        if (adjust.Linux is not { } linux) return;
        Compound(Field.Devices, _devices, linux.Devices.Select(d => (d.Path, d)), plugin);
        Compound(Field.Namespace, _namespaces, linux.Namespaces.Select(n => (n.Type, n)), plugin);
        Compound(Field.Sysctl, _sysctl, linux.Sysctl.Select(s => (s.Key, s.Value)), plugin);
        Compound(Field.LinuxNetDevices, _netDevices, linux.NetDevices.Select(d => (d.Key, d.Value)), plugin);
        if (linux.Resources is { } resources) MergeResources(id, _resources ??= new LinuxResources(), resources, plugin);
        if (linux.CgroupsPath.Length > 0)
        {
            _owners.Claim(id, Field.CgroupsPath, plugin);
            _linux.CgroupsPath = linux.CgroupsPath;
        }
        Simple(id, Field.OomScoreAdj, linux.OomScoreAdj, v => _linux.OomScoreAdj = v, plugin);
        Simple(id, Field.IoPriority, linux.IoPriority, v => _linux.IoPriority = v, plugin);
        Simple(id, Field.SeccompPolicy, linux.SeccompPolicy, v => _linux.SeccompPolicy = v, plugin);
        Simple(id, Field.LinuxSched, linux.Scheduler, v => _linux.Scheduler = v, plugin);
        Simple(id, Field.MemoryPolicy, linux.MemoryPolicy, v => _linux.MemoryPolicy = v, plugin);
        if (linux.Rdt is { } rdt)
        {
            _linux.Rdt ??= new LinuxRdt();
            if (rdt.Remove) _linux.Rdt.Remove = true;
            Simple(id, Field.RdtClosId, rdt.ClosId, v => _linux.Rdt.ClosId = v, plugin);
            Simple(id, Field.RdtSchemata, rdt.Schemata, v => _linux.Rdt.Schemata = v, plugin);
            Simple(id, Field.RdtEnableMonitoring, rdt.EnableMonitoring, v => _linux.Rdt.EnableMonitoring = v, plugin);
        }
    }

    private void Update(IEnumerable<ContainerUpdate> updates, string plugin)
    {
        foreach (var update in updates)
        {
            if (update.Linux?.Resources is not { } resources) continue;
            if (!_updates.TryGetValue(update.ContainerId, out var merged))
            {
                merged = new ContainerUpdate { ContainerId = update.ContainerId, Linux = new LinuxContainerUpdate { Resources = new LinuxResources() }, IgnoreFailure = true };
                _updates[update.ContainerId] = merged;
            }
            // One plugin's update that must not fail makes the merged one so.
            merged.IgnoreFailure &= update.IgnoreFailure;
            MergeResources(update.ContainerId, merged.Linux.Resources, resources, plugin);
        }
    }

    private void MergeResources(string id, LinuxResources into, LinuxResources from, string plugin)
    {
        if (from.Memory is { } memory)
        {
            into.Memory ??= new LinuxMemory();
            var m = into.Memory;
            Simple(id, Field.MemLimit, memory.Limit, v => m.Limit = v, plugin);
            Simple(id, Field.MemReservation, memory.Reservation, v => m.Reservation = v, plugin);
            Simple(id, Field.MemSwapLimit, memory.Swap, v => m.Swap = v, plugin);
            Simple(id, Field.MemKernelLimit, memory.Kernel, v => m.Kernel = v, plugin);
            Simple(id, Field.MemTcplimit, memory.KernelTcp, v => m.KernelTcp = v, plugin);
            Simple(id, Field.MemSwappiness, memory.Swappiness, v => m.Swappiness = v, plugin);
            Simple(id, Field.MemDisableOomKiller, memory.DisableOomKiller, v => m.DisableOomKiller = v, plugin);
            Simple(id, Field.MemUseHierarchy, memory.UseHierarchy, v => m.UseHierarchy = v, plugin);
        }
        if (from.Cpu is { } cpu)
        {
            into.Cpu ??= new LinuxCPU();
            var c = into.Cpu;
            Simple(id, Field.Cpushares, cpu.Shares, v => c.Shares = v, plugin);
            Simple(id, Field.Cpuquota, cpu.Quota, v => c.Quota = v, plugin);
            Simple(id, Field.Cpuperiod, cpu.Period, v => c.Period = v, plugin);
            Simple(id, Field.CpurealtimeRuntime, cpu.RealtimeRuntime, v => c.RealtimeRuntime = v, plugin);
            Simple(id, Field.CpurealtimePeriod, cpu.RealtimePeriod, v => c.RealtimePeriod = v, plugin);
            if (cpu.Cpus.Length > 0)
            {
                _owners.Claim(id, Field.CpusetCpus, plugin);
                c.Cpus = cpu.Cpus;
            }
            if (cpu.Mems.Length > 0)
            {
                _owners.Claim(id, Field.CpusetMems, plugin);
                c.Mems = cpu.Mems;
            }
        }
        foreach (var limit in from.HugepageLimits)
        {
            _owners.Claim(id, Field.HugepageLimits, limit.PageSize, plugin);
            into.HugepageLimits.Remove(into.HugepageLimits.FirstOrDefault(h => h.PageSize == limit.PageSize));
            into.HugepageLimits.Add(limit);
        }
        foreach (var (key, value) in from.Unified)
        {
            _owners.Claim(id, Field.CgroupsUnified, key, plugin);
            into.Unified[key] = value;
        }
        Simple(id, Field.BlockioClass, from.BlockioClass, v => into.BlockioClass = v, plugin);
        Simple(id, Field.RdtClass, from.RdtClass, v => into.RdtClass = v, plugin);
        Simple(id, Field.PidsLimit, from.Pids, v => into.Pids = v, plugin);
    }

    private void Simple<T>(string id, Field field, T? value, Action<T> assign, string plugin) where T : class
    {
        if (value is null) return;
        _owners.Claim(id, field, plugin);
        assign(value);
    }

    private void Compound<T>(Field field, Keyed<T> entries, IEnumerable<(string Key, T Value)> items, string plugin)
    {
        var all = items.ToList();
        foreach (var (key, _) in all.Where(i => IsRemoval(i.Key)))
        {
            var name = key[1..];
            if (entries.IsSet(name)) _owners.Clear(containerId, field, name, plugin);
            entries.Remove(name);
        }
        foreach (var (key, value) in all.Where(i => !IsRemoval(i.Key)))
        {
            _owners.Claim(containerId, field, key, plugin);
            entries.Put(key, value);
        }
    }

    private static bool IsRemoval(string key) => key.StartsWith('-');

    private static string Removal(string key) => "-" + key;

    /// <summary>A compound field's entries in the order they were first named, each set or removed.</summary>
    private sealed class Keyed<T>
    {
        private readonly List<string> _order = [];
        private readonly Dictionary<string, (bool Removed, T? Value)> _entries = [];

        public bool IsSet(string key) => _entries.TryGetValue(key, out var e) && !e.Removed;

        public void Put(string key, T value)
        {
            if (!_entries.ContainsKey(key)) _order.Add(key);
            _entries[key] = (false, value);
        }

        public void Remove(string key)
        {
            if (!_entries.ContainsKey(key)) _order.Add(key);
            _entries[key] = (true, default);
        }

        public IEnumerable<(string Key, T? Value)> Removed => _order.Where(k => _entries[k].Removed).Select(k => (k, _entries[k].Value));

        public IEnumerable<(string Key, T Value)> Set => _order.Where(k => !_entries[k].Removed).Select(k => (k, _entries[k].Value!));
    }
}
