using Berth.Nri.Api;
using Berth.Runtime.Containers;
using Berth.Runtime.Spec;
using Berth.Sandbox;
using NriContainerState = Berth.Nri.Api.ContainerState;

namespace Berth.CriServer.Nri;

/// <summary>Berth's pods, containers and OCI specs as NRI's API shows them to plugins (pkg/api's PodSandbox and Container).</summary>
internal static class NriMapper
{
    public static PodSandbox Pod(SandboxRecord sandbox)
    {
        var pod = new PodSandbox
        {
            Id = sandbox.Id, Name = sandbox.Name, Uid = sandbox.Uid, Namespace = sandbox.Namespace, RuntimeHandler = sandbox.RuntimeHandler,
            Pid = (uint)(sandbox.Infra?.Pid ?? 0),
            Linux = new LinuxPodSandbox { CgroupParent = sandbox.CgroupParent ?? "" },
        };
        pod.Labels.Add(sandbox.Labels);
        pod.Annotations.Add(sandbox.Annotations);
        pod.Ips.AddRange(sandbox.Ips);
        foreach (var (type, path) in sandbox.NamespacePaths) pod.Linux.Namespaces.Add(new LinuxNamespace { Type = type, Path = path });
        return pod;
    }

    /// <summary>A container with what its spec says (args, env, mounts, hooks, Linux settings); null spec gives the record's part only.</summary>
    public static Container Container(ContainerRecord record, OciSpec? spec)
    {
        var container = new Container
        {
            Id = record.Id, PodSandboxId = record.PodId, Name = record.Name,
            State = record.State switch
            {
                Runtime.Containers.ContainerState.Created => NriContainerState.ContainerCreated,
                Runtime.Containers.ContainerState.Running => NriContainerState.ContainerRunning,
                Runtime.Containers.ContainerState.Exited => NriContainerState.ContainerStopped,
                _ => NriContainerState.ContainerUnknown,
            },
            Pid = (uint)Math.Max(record.InitPid, 0),
            CreatedAt = record.CreatedAt, StartedAt = record.StartedAt, FinishedAt = record.FinishedAt, ExitCode = record.ExitCode,
            StatusReason = record.Reason, StatusMessage = record.Message,
            Image = new Image { Name = record.ImageName.Length > 0 ? record.ImageName : record.Image, Digest = record.ImageRef },
        };
        container.Labels.Add(record.Labels);
        container.Annotations.Add(record.Annotations);
        if (spec is null) return container;
        container.Args.AddRange(spec.Process.Args);
        container.Env.AddRange(spec.Process.Env);
        container.Mounts.AddRange(spec.Mounts.Select(m => new Mount { Destination = m.Destination, Type = m.Type, Source = m.Source, Options = { m.Options } }));
        if (spec.Hooks is { } hooks) container.Hooks = Hooks(hooks);
        foreach (var rlimit in spec.Process.Rlimits ?? []) container.Rlimits.Add(new POSIXRlimit { Type = rlimit.Type, Hard = rlimit.Hard, Soft = rlimit.Soft });
        container.User = new User { Uid = spec.Process.User.Uid, Gid = spec.Process.User.Gid, AdditionalGids = { spec.Process.User.AdditionalGids ?? [] } };
        var linux = new LinuxContainer { CgroupsPath = spec.Linux.CgroupsPath ?? "", Resources = Resources(spec.Linux.Resources) };
        linux.Namespaces.AddRange(spec.Linux.Namespaces.Select(n => new LinuxNamespace { Type = n.Type, Path = n.Path ?? "" }));
        foreach (var device in spec.Linux.Devices ?? [])
        {
            var d = new LinuxDevice { Path = device.Path, Type = device.Type, Major = device.Major, Minor = device.Minor };
            if (device.FileMode is { } mode) d.FileMode = new OptionalFileMode { Value = mode };
            if (device.Uid is { } uid) d.Uid = new OptionalUInt32 { Value = uid };
            if (device.Gid is { } gid) d.Gid = new OptionalUInt32 { Value = gid };
            linux.Devices.Add(d);
        }
        if (spec.Process.OomScoreAdj is { } oom) linux.OomScoreAdj = new OptionalInt { Value = oom };
        foreach (var (key, value) in spec.Linux.Sysctl ?? []) linux.Sysctl[key] = value;
        container.Linux = linux;
        return container;
    }

    public static LinuxResources Resources(OciResources? resources)
    {
        var nri = new LinuxResources();
        if (resources is null) return nri;
        if (resources.Memory is { } memory)
        {
            nri.Memory = new LinuxMemory();
            if (memory.Limit is { } limit) nri.Memory.Limit = new OptionalInt64 { Value = limit };
            if (memory.Swap is { } swap) nri.Memory.Swap = new OptionalInt64 { Value = swap };
            if (memory.Reservation is { } reservation) nri.Memory.Reservation = new OptionalInt64 { Value = reservation };
        }
        if (resources.Cpu is { } cpu)
        {
            nri.Cpu = new LinuxCPU { Cpus = cpu.Cpus ?? "", Mems = cpu.Mems ?? "" };
            if (cpu.Shares is { } shares) nri.Cpu.Shares = new OptionalUInt64 { Value = shares };
            if (cpu.Quota is { } quota) nri.Cpu.Quota = new OptionalInt64 { Value = quota };
            if (cpu.Period is { } period) nri.Cpu.Period = new OptionalUInt64 { Value = period };
        }
        foreach (var limit in resources.HugepageLimits ?? []) nri.HugepageLimits.Add(new HugepageLimit { PageSize = limit.PageSize, Limit = limit.Limit });
        foreach (var (key, value) in resources.Unified ?? []) nri.Unified[key] = value;
        if (resources.Pids is { } pids) nri.Pids = new LinuxPids { Limit = pids.Limit };
        return nri;
    }

    /// <summary>A CRI resource update as NRI's LinuxResources, for UpdateContainer.</summary>
    public static LinuxResources Resources(ContainerResources resources)
    {
        var nri = new LinuxResources
        {
            Memory = new LinuxMemory(),
            Cpu = new LinuxCPU { Cpus = resources.CpusetCpus, Mems = resources.CpusetMems },
        };
        if (resources.MemoryLimitInBytes != 0) nri.Memory.Limit = new OptionalInt64 { Value = resources.MemoryLimitInBytes };
        if (resources.MemorySwapLimitInBytes != 0) nri.Memory.Swap = new OptionalInt64 { Value = resources.MemorySwapLimitInBytes };
        if (resources.CpuShares != 0) nri.Cpu.Shares = new OptionalUInt64 { Value = (ulong)resources.CpuShares };
        if (resources.CpuQuota != 0) nri.Cpu.Quota = new OptionalInt64 { Value = resources.CpuQuota };
        if (resources.CpuPeriod != 0) nri.Cpu.Period = new OptionalUInt64 { Value = (ulong)resources.CpuPeriod };
        foreach (var (size, limit) in resources.HugepageLimits) nri.HugepageLimits.Add(new HugepageLimit { PageSize = size, Limit = limit });
        foreach (var (key, value) in resources.Unified) nri.Unified[key] = value;
        return nri;
    }

    /// <summary>NRI's LinuxResources over <paramref name="baseline"/>: what it sets replaces, what it leaves out stays.</summary>
    public static ContainerResources Resources(LinuxResources nri, ContainerResources baseline)
    {
        var unified = new Dictionary<string, string>(baseline.Unified);
        foreach (var (key, value) in nri.Unified) unified[key] = value;
        var hugepages = baseline.HugepageLimits.Where(h => nri.HugepageLimits.All(n => n.PageSize != h.Key)).ToList();
        hugepages.AddRange(nri.HugepageLimits.Select(h => new KeyValuePair<string, ulong>(h.PageSize, h.Limit)));
        return baseline with
        {
            MemoryLimitInBytes = nri.Memory?.Limit?.Value ?? baseline.MemoryLimitInBytes,
            MemorySwapLimitInBytes = nri.Memory?.Swap?.Value ?? baseline.MemorySwapLimitInBytes,
            CpuShares = nri.Cpu?.Shares is { } shares ? (long)shares.Value : baseline.CpuShares,
            CpuQuota = nri.Cpu?.Quota?.Value ?? baseline.CpuQuota,
            CpuPeriod = nri.Cpu?.Period is { } period ? (long)period.Value : baseline.CpuPeriod,
            CpusetCpus = nri.Cpu is { Cpus.Length: > 0 } ? nri.Cpu.Cpus : baseline.CpusetCpus,
            CpusetMems = nri.Cpu is { Mems.Length: > 0 } ? nri.Cpu.Mems : baseline.CpusetMems,
            HugepageLimits = hugepages,
            Unified = unified,
        };
    }

    private static Hooks Hooks(OciHooks hooks)
    {
        static IEnumerable<Hook> Stage(List<OciHook>? stage) => (stage ?? []).Select(h =>
        {
            var hook = new Hook { Path = h.Path, Args = { h.Args ?? [] }, Env = { h.Env ?? [] } };
            if (h.Timeout is { } timeout) hook.Timeout = new OptionalInt { Value = timeout };
            return hook;
        });
        return new Hooks
        {
            Prestart = { Stage(hooks.Prestart) }, CreateRuntime = { Stage(hooks.CreateRuntime) }, CreateContainer = { Stage(hooks.CreateContainer) },
            StartContainer = { Stage(hooks.StartContainer) }, Poststart = { Stage(hooks.Poststart) }, Poststop = { Stage(hooks.Poststop) },
        };
    }
}
