using System.Globalization;

namespace Berth.Runtime.Spec;

/// <summary>
/// Turns a container request, its pod, its image and the node's settings into the OCI runtime spec that runc
/// runs. A pure function: everything it needs from the host (the image's users, devices, profiles) comes in.
/// </summary>
public static class OciSpecBuilder
{
    public const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>Paths a container must not read (kernel memory, hardware and timing information).</summary>
    public static readonly IReadOnlyList<string> DefaultMaskedPaths =
    [
        "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ];

    /// <summary>Paths a container may read but must not write (kernel tunables and triggers).</summary>
    public static readonly IReadOnlyList<string> DefaultReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    public static OciSpec Build(string containerId, ContainerRequest request, PodSettings pod, ImageSettings image, NodeSettings node, UserDatabase users)
    {
        var security = request.Security;
        if (security.Privileged && !pod.Privileged)
            throw new ContainerSpecException("linux.security_context.privileged: a privileged container needs a privileged pod sandbox");
        // Kubernetes refuses hostUsers: false with privileged containers: a privileged container is the node's root.
        if (security.Privileged && pod.UserNamespace is not null)
            throw new ContainerSpecException("linux.security_context.privileged: a container of a pod with its own user namespace cannot be privileged");

        if (node.SystemdCgroup && !string.IsNullOrEmpty(pod.CgroupParent) && !Cgroups.CgroupPaths.IsSlice(pod.CgroupParent))
            throw new ContainerSpecException(
                $"linux.cgroup_parent: '{pod.CgroupParent}' is no systemd slice (such as kubepods-burstable-pod<uid>.slice), and this node's cgroup driver is systemd");
        if (security.RunAsGroup is not null && security.RunAsUser is null && string.IsNullOrEmpty(security.RunAsUsername))
            throw new ContainerSpecException("linux.security_context.run_as_group: needs run_as_user or run_as_username");
        // Never more than the node's bounding set (privileged, or "ALL" added), or runc fails to apply the set.
        var capabilities = (security.Privileged ? [.. Capabilities.All] : Capabilities.Apply(security.AddCapabilities, security.DropCapabilities))
            .Where(c => node.BoundingCapabilities is not { } bounding || Array.IndexOf(Capabilities.All, c) is var bit && (bit < 0 || (bounding & (1UL << bit)) != 0))
            .ToList();
        var ambient = security.AddAmbientCapabilities.Select(c => Capabilities.Normalize(c, "capabilities.add_ambient_capabilities")).ToList();
        var missingAmbient = ambient.FirstOrDefault(c => !capabilities.Contains(c));
        if (missingAmbient is not null)
            throw new ContainerSpecException($"capabilities.add_ambient_capabilities: {missingAmbient} is not among the container's capabilities");

        var process = new OciProcess
        {
            Terminal = request.Tty,
            User = ResolveUser(security, image, users),
            Args = CommandLine(request, image),
            Env = Environment(request, image, pod),
            Cwd = WorkingDirectory(request, image),
            Capabilities = new OciCapabilities
            {
                Bounding = capabilities,
                Effective = capabilities,
                Permitted = capabilities,
                Ambient = ambient.Count > 0 ? ambient : null,
            },
            Rlimits = node.Rlimits.Count > 0 ? [.. node.Rlimits] : null,
            NoNewPrivileges = security.NoNewPrivileges && !security.Privileged,
            ApparmorProfile = security.AppArmorProfile,
            OomScoreAdj = OomScoreAdj(request.Resources.OomScoreAdj, node),
        };

        var (mounts, rootfsPropagation) = Mounts(request, pod, image, security.Privileged);
        var devices = Devices(request, node, security.Privileged);
        return CdiSpecEdits.Apply(new OciSpec
        {
            Process = process,
            Root = new OciRoot { Path = "rootfs", Readonly = security.ReadonlyRootfs },
            Mounts = mounts,
            Annotations = Annotations(request, pod, image),
            Linux = new OciLinux
            {
                Resources = Resources(request, node, devices, security.Privileged),
                CgroupsPath = Cgroups.CgroupPaths.ForContainer(containerId, pod.CgroupParent, node.SystemdCgroup),
                Namespaces = Namespaces(pod, security, node),
                UidMappings = pod.UserNamespace is { } uids ? [uids.Uids] : null,
                GidMappings = pod.UserNamespace is { } gids ? [gids.Gids] : null,
                Devices = devices.Count > 0 ? [.. devices.Select(d => d.Node)] : null,
                Seccomp = Seccomp(security, capabilities),
                RootfsPropagation = rootfsPropagation,
                MaskedPaths = security.Privileged ? null : [.. security.MaskedPaths.Count > 0 ? ContainerPaths(security.MaskedPaths, "masked_paths") : DefaultMaskedPaths],
                ReadonlyPaths = security.Privileged ? null : [.. security.ReadonlyPaths.Count > 0 ? ContainerPaths(security.ReadonlyPaths, "readonly_paths") : DefaultReadonlyPaths],
            },
        }, request.Cdi);
    }

    /// <summary>
    /// Kubernetes' rules: a command replaces the image's entrypoint and cmd; args alone replace only the cmd.
    /// </summary>
    internal static List<string> CommandLine(ContainerRequest request, ImageSettings image)
    {
        List<string> args = request.Command.Count > 0
            ? [.. request.Command, .. request.Args]
            : [.. image.Entrypoint, .. request.Args.Count > 0 ? request.Args : image.Cmd];
        if (args.Count == 0 || args[0].Length == 0)
            throw new ContainerSpecException("command: neither the container config nor the image names a command to run");
        return args;
    }

    /// <summary>HOSTNAME, then the image's, then the request's; a later value of a name replaces an earlier one in place.</summary>
    private static List<string> Environment(ContainerRequest request, ImageSettings image, PodSettings pod)
    {
        var order = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        void Set(string name, string entry)
        {
            if (!values.ContainsKey(name)) order.Add(name);
            values[name] = entry;
        }
        if (pod.Hostname.Length > 0) Set("HOSTNAME", "HOSTNAME=" + pod.Hostname);
        foreach (var entry in image.Env)
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            Set(equals < 0 ? entry : entry[..equals], entry);
        }
        foreach (var (name, value) in request.Env)
        {
            if (name.Length == 0 || name.Contains('=', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
                throw new ContainerSpecException($"envs: '{name.Replace("\0", "\\0", StringComparison.Ordinal)}' is not a valid variable name");
            if (value.Contains('\0', StringComparison.Ordinal))
                throw new ContainerSpecException($"envs: the value of '{name}' contains a NUL byte");
            Set(name, $"{name}={value}");
        }
        if (!values.ContainsKey("PATH")) Set("PATH", DefaultPath);
        return [.. order.Select(n => values[n])];
    }

    /// <summary>Paths inside the container: absolute, no NUL, no longer than PATH_MAX.</summary>
    private static IReadOnlyList<string> ContainerPaths(IReadOnlyList<string> paths, string field)
    {
        foreach (var path in paths)
        {
            if (!path.StartsWith('/') || path.Contains('\0', StringComparison.Ordinal) || path.Length > 4096)
                throw new ContainerSpecException($"linux.security_context.{field}: '{(path.Length > 64 ? path[..64] + "…" : path.Replace("\0", "\\0", StringComparison.Ordinal))}' is not an absolute path");
        }
        return paths;
    }

    private static string WorkingDirectory(ContainerRequest request, ImageSettings image)
    {
        var cwd = !string.IsNullOrEmpty(request.WorkingDir) ? request.WorkingDir : !string.IsNullOrEmpty(image.WorkingDir) ? image.WorkingDir : "/";
        return cwd.StartsWith('/') ? cwd : throw new ContainerSpecException($"working_dir: '{cwd}' is not an absolute path");
    }

    /// <summary>
    /// run_as_user or run_as_username, else the image's USER (uid, name, uid:gid or name:group), else root;
    /// run_as_group replaces the primary group. Supplemental groups follow the policy.
    /// </summary>
    internal static OciUser ResolveUser(ContainerSecurity security, ImageSettings image, UserDatabase users)
    {
        uint uid, gid;
        string? name;
        if (security.RunAsUser is { } requestedUid)
        {
            if (requestedUid is < 0 or > uint.MaxValue) throw new ContainerSpecException($"linux.security_context.run_as_user: {requestedUid} is not a uid");
            uid = (uint)requestedUid;
            var entry = users.UserById(uid);
            (name, gid) = (entry?.Name, entry?.Gid ?? 0);
        }
        else if (!string.IsNullOrEmpty(security.RunAsUsername))
        {
            var entry = users.UserByName(security.RunAsUsername)
                        ?? throw new ContainerSpecException($"linux.security_context.run_as_username: no user '{security.RunAsUsername}' in the image's /etc/passwd");
            (name, uid, gid) = entry;
        }
        else
        {
            (name, uid, gid) = ImageUser(image.User, users);
        }

        if (security.RunAsGroup is { } requestedGid)
        {
            if (requestedGid is < 0 or > uint.MaxValue) throw new ContainerSpecException($"linux.security_context.run_as_group: {requestedGid} is not a gid");
            gid = (uint)requestedGid;
        }

        var groups = new List<uint> { gid };
        if (security.SupplementalGroupsPolicy == SupplementalGroupsPolicy.Merge && name is not null) groups.AddRange(users.GroupsOf(name));
        foreach (var group in security.SupplementalGroups)
        {
            if (group is < 0 or > uint.MaxValue) throw new ContainerSpecException($"linux.security_context.supplemental_groups: {group} is not a gid");
            groups.Add((uint)group);
        }
        return new OciUser { Uid = uid, Gid = gid, AdditionalGids = [.. groups.Distinct()] };
    }

    private static (string? Name, uint Uid, uint Gid) ImageUser(string? spec, UserDatabase users)
    {
        if (string.IsNullOrEmpty(spec)) return (users.UserById(0)?.Name ?? "root", 0, 0);
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var userPart = colon < 0 ? spec : spec[..colon];
        var groupPart = colon < 0 ? null : spec[(colon + 1)..];

        string? name;
        uint uid, gid;
        if (UserDatabase.TryId(userPart, out uid))
        {
            var entry = users.UserById(uid);
            (name, gid) = (entry?.Name, entry?.Gid ?? 0);
        }
        else
        {
            var entry = users.UserByName(userPart)
                        ?? throw new ContainerSpecException($"image user '{spec}': no user '{userPart}' in the image's /etc/passwd");
            (name, uid, gid) = entry;
        }
        if (!string.IsNullOrEmpty(groupPart))
        {
            gid = UserDatabase.TryId(groupPart, out var numeric)
                ? numeric
                : users.GroupByName(groupPart) ?? throw new ContainerSpecException($"image user '{spec}': no group '{groupPart}' in the image's /etc/group");
        }
        return (name, uid, gid);
    }

    private static int? OomScoreAdj(long requested, NodeSettings node)
    {
        if (requested is < -1000 or > 1000) throw new ContainerSpecException($"linux.resources.oom_score_adj: {requested} is outside -1000..1000");
        var value = (int)requested;
        return node.OomScoreAdjFloor is { } floor && value < floor ? floor : value;
    }

    private static (List<OciMount> Mounts, string? RootfsPropagation) Mounts(ContainerRequest request, PodSettings pod, ImageSettings image, bool privileged)
    {
        var sysOptions = privileged ? new List<string> { "nosuid", "noexec", "nodev", "rw" } : ["nosuid", "noexec", "nodev", "ro"];
        var mounts = new List<OciMount>
        {
            new() { Destination = "/proc", Type = "proc", Source = "proc", Options = ["nosuid", "noexec", "nodev"] },
            new() { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            new() { Destination = "/dev/pts", Type = "devpts", Source = "devpts", Options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            new() { Destination = "/dev/mqueue", Type = "mqueue", Source = "mqueue", Options = ["nosuid", "noexec", "nodev"] },
            new() { Destination = "/sys", Type = "sysfs", Source = "sysfs", Options = sysOptions },
            new() { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup", Options = [.. sysOptions, "relatime"] },
        };
        mounts.Add(pod.ShmPath is { } shm
            ? Bind("/dev/shm", shm, readOnly: false)
            : new OciMount { Destination = "/dev/shm", Type = "tmpfs", Source = "shm", Options = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] });
        if (pod.HostnameFile is { } hostname) mounts.Add(Bind("/etc/hostname", hostname, request.Security.ReadonlyRootfs));
        if (pod.HostsFile is { } hosts) mounts.Add(Bind("/etc/hosts", hosts, request.Security.ReadonlyRootfs));
        if (pod.ResolvConfFile is { } resolv) mounts.Add(Bind("/etc/resolv.conf", resolv, request.Security.ReadonlyRootfs));

        foreach (var (destination, hostDirectory) in image.Volumes.OrderBy(v => v.Key, StringComparer.Ordinal))
            mounts.Add(Bind(Clean(destination), hostDirectory, readOnly: false));

        string? rootfsPropagation = null;
        var requested = new List<OciMount>();
        for (var i = 0; i < request.Mounts.Count; i++)
        {
            var mount = request.Mounts[i];
            if (!mount.ContainerPath.StartsWith('/')) throw new ContainerSpecException($"mounts[{i}].container_path: '{mount.ContainerPath}' is not an absolute path");
            if (!mount.HostPath.StartsWith('/')) throw new ContainerSpecException($"mounts[{i}].host_path: '{mount.HostPath}' is not an absolute path");
            var bind = Bind(Clean(mount.ContainerPath), mount.HostPath, mount.Readonly);
            if (mount.RecursiveReadonly)
            {
                // "ro" alone leaves the host path's own submounts writable.
                if (!mount.Readonly || mount.Propagation != MountPropagation.Private)
                    throw new ContainerSpecException($"mounts[{i}].recursive_read_only: needs readonly and private propagation");
                bind.Options.Add("rro");
            }
            switch (mount.Propagation)
            {
                case MountPropagation.Bidirectional:
                    bind.Options.Add("rshared");
                    rootfsPropagation = "rshared";
                    break;
                case MountPropagation.HostToContainer:
                    bind.Options.Add("rslave");
                    rootfsPropagation ??= "rslave";
                    break;
                default:
                    bind.Options.Add("rprivate");
                    break;
            }
            requested.Add(bind);
        }

        // A requested mount replaces a default at the same place (kubelet brings its own /etc/hosts, for one).
        var replaced = requested.Select(m => m.Destination).ToHashSet(StringComparer.Ordinal);
        mounts.RemoveAll(m => replaced.Contains(m.Destination));
        // Parents before children, whatever order they were asked in.
        mounts.AddRange(requested.OrderBy(m => m.Destination.Count(c => c == '/')));
        return (mounts, rootfsPropagation);
    }

    private static OciMount Bind(string destination, string source, bool readOnly) =>
        new() { Destination = destination, Type = "bind", Source = source, Options = ["rbind", readOnly ? "ro" : "rw"] };

    private static string Clean(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            if (part == "..")
            {
                if (parts.Count > 0) parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        return "/" + string.Join('/', parts);
    }

    private static SortedDictionary<string, string> Annotations(ContainerRequest request, PodSettings pod, ImageSettings image)
    {
        var annotations = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in request.Annotations) annotations[key] = value;
        // The keys hooks and NRI plugins read, as containerd and CRI-O set them.
        annotations["io.kubernetes.cri.container-type"] = "container";
        annotations["io.kubernetes.cri.container-name"] = request.Name;
        annotations["io.kubernetes.cri.sandbox-id"] = pod.Id;
        annotations["io.kubernetes.cri.sandbox-name"] = pod.Name;
        annotations["io.kubernetes.cri.sandbox-namespace"] = pod.Namespace;
        annotations["io.kubernetes.cri.sandbox-uid"] = pod.Uid;
        annotations["io.kubernetes.cri.image-name"] = image.ImageName.Length > 0 ? image.ImageName : image.ImageRef;
        return annotations;
    }

    private static OciResources Resources(ContainerRequest request, NodeSettings node, List<(OciDevice Node, string Access)> devices, bool privileged)
    {
        var r = request.Resources;
        if (r.CpuShares < 0) throw new ContainerSpecException($"linux.resources.cpu_shares: {r.CpuShares} is negative");
        if (r.CpuPeriod < 0) throw new ContainerSpecException($"linux.resources.cpu_period: {r.CpuPeriod} is negative");
        if (r.CpuQuota < -1) throw new ContainerSpecException($"linux.resources.cpu_quota: {r.CpuQuota} is below -1");
        if (r.MemoryLimitInBytes < 0) throw new ContainerSpecException($"linux.resources.memory_limit_in_bytes: {r.MemoryLimitInBytes} is negative");
        if (r.MemorySwapLimitInBytes < -1) throw new ContainerSpecException($"linux.resources.memory_swap_limit_in_bytes: {r.MemorySwapLimitInBytes} is below -1");
        if (r.Unified.Count > 0 && !node.CgroupV2)
            throw new ContainerSpecException("linux.resources.unified: needs cgroup v2, and this node runs cgroup v1");
        // The kernel's own bounds (cpu.shares 2..262144, CFS period 1 ms..1 s, quota from 1 ms): said here by field,
        // not by runc as a failed write.
        if (r.CpuShares is > 0 and (< 2 or > 262144)) throw new ContainerSpecException($"linux.resources.cpu_shares: {r.CpuShares} is outside 2-262144");
        if (r.CpuPeriod is > 0 and (< 1000 or > 1_000_000)) throw new ContainerSpecException($"linux.resources.cpu_period: {r.CpuPeriod} is outside 1000-1000000 µs");
        if (r.CpuQuota is > 0 and (< 1000 or > MaxCpuQuota)) throw new ContainerSpecException($"linux.resources.cpu_quota: {r.CpuQuota} is outside 1000-{MaxCpuQuota} µs");
        CheckCpuset(r.CpusetCpus, "cpuset_cpus", node.OnlineCpus, "CPUs");
        CheckCpuset(r.CpusetMems, "cpuset_mems", node.OnlineMems, "memory nodes");

        var cpu = r.CpuShares > 0 || r.CpuQuota != 0 || r.CpuPeriod > 0 || r.CpusetCpus.Length > 0 || r.CpusetMems.Length > 0
            ? new OciCpu
            {
                Shares = r.CpuShares > 0 ? (ulong)r.CpuShares : null,
                Quota = r.CpuQuota != 0 ? r.CpuQuota : null,
                Period = r.CpuPeriod > 0 ? (ulong)r.CpuPeriod : null,
                Cpus = r.CpusetCpus.Length > 0 ? r.CpusetCpus : null,
                Mems = r.CpusetMems.Length > 0 ? r.CpusetMems : null,
            }
            : null;

        long? swap = null;
        if (node.SwapAccounting)
        {
            // memory+swap; equal to the limit means no swap at all, as kubelet asks when it sends none.
            if (r.MemorySwapLimitInBytes != 0) swap = r.MemorySwapLimitInBytes;
            else if (r.MemoryLimitInBytes > 0) swap = r.MemoryLimitInBytes;
        }
        var memory = r.MemoryLimitInBytes > 0 || swap is not null
            ? new OciMemory { Limit = r.MemoryLimitInBytes > 0 ? r.MemoryLimitInBytes : null, Swap = swap }
            : null;

        List<OciHugepageLimit>? hugepages = null;
        if (r.HugepageLimits.Count > 0)
        {
            hugepages = [];
            foreach (var (pageSize, limit) in r.HugepageLimits)
            {
                if (!IsPageSize(pageSize)) throw new ContainerSpecException($"linux.resources.hugepage_limits: '{pageSize}' is not a page size like 2MB or 1GB");
                hugepages.Add(new OciHugepageLimit(pageSize, limit));
            }
        }

        return new OciResources
        {
            // Nothing but what is listed; runc adds the standard character devices (null, zero, tty, ...) itself.
            Devices = privileged
                ? [new OciDeviceCgroup { Allow = true, Access = "rwm" }]
                : [new OciDeviceCgroup { Allow = false, Access = "rwm" },
                   .. devices.Select(d => new OciDeviceCgroup { Allow = true, Type = d.Node.Type, Major = d.Node.Major, Minor = d.Node.Minor, Access = d.Access })],
            Cpu = cpu,
            Memory = memory,
            Pids = node.PidsLimit > 0 ? new OciPids(node.PidsLimit) : null,
            HugepageLimits = hugepages,
            Unified = r.Unified.Count > 0 ? new SortedDictionary<string, string>(r.Unified.ToDictionary(), StringComparer.Ordinal) : null,
        };
    }

    /// <summary>The resources UpdateContainerResources applies to a running container (<c>runc update</c>); devices stay as they are.</summary>
    public static OciResources UpdatedResources(ContainerResources resources, NodeSettings node) =>
        Resources(new ContainerRequest { Name = "", Resources = resources }, node, [], privileged: false) with { Devices = null };

    /// <summary>The largest CFS quota the kernel takes (its MAX_BW, in µs).</summary>
    private const long MaxCpuQuota = (1L << 44) - 1;

    /// <summary>A cpuset list ("0-3,6") whose every member the node has online.</summary>
    private static void CheckCpuset(string list, string field, IReadOnlySet<int>? online, string what)
    {
        if (list.Length == 0) return;
        if (ParseCpuset(list) is not { } members)
            throw new ContainerSpecException($"linux.resources.{field}: '{(list.Length > 64 ? list[..64] + "…" : list)}' is not a list like 0-3,6");
        if (online is not null && members.FirstOrDefault(m => !online.Contains(m), -1) is var missing and >= 0)
            throw new ContainerSpecException($"linux.resources.{field}: {missing} is not among the node's online {what} ({string.Join(',', online.Order())})");
    }

    /// <summary>The members of a kernel list ("0-3,6"), or null when it is not one; bounded, so a hostile range costs nothing.</summary>
    public static IReadOnlySet<int>? ParseCpuset(string list)
    {
        if (list.Length > 1024) return null;
        var members = new HashSet<int>();
        foreach (var part in list.Trim().Split(','))
        {
            var dash = part.IndexOf('-', StringComparison.Ordinal);
            var (from, to) = dash < 0 ? (part, part) : (part[..dash], part[(dash + 1)..]);
            if (!int.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                || !int.TryParse(to, NumberStyles.None, CultureInfo.InvariantCulture, out var last) || last < first || last > 8191)
                return null;
            for (var i = first; i <= last; i++) members.Add(i);
        }
        return members;
    }

    private static bool IsPageSize(string text)
    {
        var unit = text.Length >= 2 ? text[^2..] : "";
        return unit is "KB" or "MB" or "GB" && ulong.TryParse(text[..^2], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0;
    }

    private static List<OciNamespace> Namespaces(PodSettings pod, ContainerSecurity security, NodeSettings node)
    {
        var namespaces = new List<OciNamespace> { new("mount") };
        // The pod's user namespace owns its network, IPC, UTS and shared PID namespaces; the container's own mount, PID and cgroup namespaces are made inside it.
        if (pod.UserNamespace is { } userns) namespaces.Add(new("user", userns.Path));
        // Each pinned namespace of the pod is joined; a kind the pod lacks is the node's, so it gets no entry.
        if (pod.NamespacePaths.TryGetValue("network", out var net)) namespaces.Add(new("network", net));
        if (pod.NamespacePaths.TryGetValue("ipc", out var ipc)) namespaces.Add(new("ipc", ipc));
        if (pod.NamespacePaths.TryGetValue("uts", out var uts)) namespaces.Add(new("uts", uts));
        switch (security.Pid)
        {
            case ContainerPidMode.Container:
                namespaces.Add(new("pid"));
                break;
            case ContainerPidMode.Pod:
                namespaces.Add(new("pid", pod.NamespacePaths.GetValueOrDefault("pid")
                    ?? throw new ContainerSpecException("linux.security_context.namespace_options.pid: POD, but the pod sandbox has no shared PID namespace")));
                break;
            case ContainerPidMode.Target:
                namespaces.Add(new("pid", security.TargetPidNamespace
                    ?? throw new ContainerSpecException("linux.security_context.namespace_options.target_id: the target container has no PID namespace")));
                break;
            case ContainerPidMode.Node:
                break;
        }
        // On cgroup v2 the container sees its own cgroup as the root, as containerd does there.
        if (node.CgroupV2 && !security.Privileged) namespaces.Add(new("cgroup"));
        return namespaces;
    }

    private static List<(OciDevice Node, string Access)> Devices(ContainerRequest request, NodeSettings node, bool privileged)
    {
        var devices = new List<(OciDevice, string)>();
        var wanted = privileged ? node.HostDevices.Concat(request.Devices) : request.Devices;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var index = 0;
        foreach (var device in wanted)
        {
            if (!device.ContainerPath.StartsWith('/')) throw new ContainerSpecException($"devices[{index}].container_path: '{device.ContainerPath}' is not an absolute path");
            if (device.Type is not ('c' or 'b')) throw new ContainerSpecException($"devices[{index}].host_path: '{device.HostPath}' is not a character or block device");
            if (device.Permissions.Length == 0 || device.Permissions.Any(c => c is not ('r' or 'w' or 'm')))
                throw new ContainerSpecException($"devices[{index}].permissions: '{device.Permissions}' is not a combination of r, w and m");
            index++;
            if (!seen.Add(device.ContainerPath)) continue;
            devices.Add((new OciDevice
            {
                Path = device.ContainerPath,
                Type = device.Type.ToString(),
                Major = device.Major,
                Minor = device.Minor,
                FileMode = device.FileMode,
                Uid = 0,
                Gid = 0,
            }, device.Permissions));
        }
        return devices;
    }

    private static OciSeccomp? Seccomp(ContainerSecurity security, IReadOnlyCollection<string> capabilities)
    {
        if (security.Privileged) return null;
        return security.Seccomp switch
        {
            SeccompMode.RuntimeDefault => DefaultSeccompProfile.Build(capabilities),
            SeccompMode.Localhost => security.SeccompProfile
                                     ?? throw new ContainerSpecException("linux.security_context.seccomp.localhost_ref: the profile was not given"),
            _ => null,
        };
    }
}
