using System.Text.Json;
using Berth.Cri.V1;
using Berth.ImageStore.Images;
using Berth.ImageStore.Oci;
using Berth.Runtime;
using Berth.Runtime.Containers;
using Berth.Runtime.Spec;
using Berth.Sandbox;
using Grpc.Core;
using CriMount = Berth.Cri.V1.Mount;
using ContainerResources = Berth.Runtime.Spec.ContainerResources;
using RuntimeState = Berth.Runtime.Containers.ContainerState;

namespace Berth.CriServer.Services;

/// <summary>CRI container messages to Runtime's requests, and container records back to CRI messages.</summary>
internal static class ContainerMapper
{
    public static ContainerRequest ToRequest(ContainerConfig config, ContainerManagerLookup lookup, Func<string, string, ImageMountSource> imageVolume)
    {
        var linux = config.Linux;
        var security = linux?.SecurityContext;
        return new ContainerRequest
        {
            Name = config.Metadata.Name,
            Command = [.. config.Command],
            Args = [.. config.Args],
            WorkingDir = string.IsNullOrEmpty(config.WorkingDir) ? null : config.WorkingDir,
            Env = [.. config.Envs.Select(e => new KeyValuePair<string, string>(e.Key, e.Value.ToStringUtf8()))],
            Mounts = Mounts(config.Mounts, imageVolume),
            Devices = [.. config.Devices.Select((d, i) => NodeProbe.Device(d.HostPath, d.ContainerPath, string.IsNullOrEmpty(d.Permissions) ? "rwm" : d.Permissions)
                                               ?? throw Invalid($"devices[{i}].host_path: '{d.HostPath}' is not a device on this node"))],
            Annotations = config.Annotations,
            Tty = config.Tty,
            Resources = Resources(linux?.Resources),
            Security = Security(security, lookup),
        };
    }

    /// <param name="mounts">CRI's mounts.</param>
    /// <param name="imageVolume">The image an image volume names (the field, the name), or NotFound.</param>
    public static IReadOnlyList<ContainerMount> Mounts(IEnumerable<CriMount> mounts, Func<string, string, ImageMountSource> imageVolume)
    {
        var result = new List<ContainerMount>();
        var index = 0;
        foreach (var mount in mounts)
        {
            var field = $"mounts[{index++}]";
            if (string.IsNullOrEmpty(mount.ContainerPath) || !mount.ContainerPath.StartsWith('/'))
                throw Invalid($"{field}.container_path: '{mount.ContainerPath}' is not an absolute path");
            if (mount.Image is { Image.Length: > 0 } image)
            {
                if (!mount.Readonly) throw Invalid($"{field}.readonly: an image volume is read-only, so readonly must be set");
                if (mount.ImageSubPath.Contains('\0', StringComparison.Ordinal)) throw Invalid($"{field}.image_sub_path: contains NUL");
                result.Add(new ContainerMount
                {
                    ContainerPath = mount.ContainerPath,
                    HostPath = "",
                    Readonly = true,
                    Image = imageVolume($"{field}.image", image.Image) with { SubPath = mount.ImageSubPath },
                });
                continue;
            }
            if (!string.IsNullOrEmpty(mount.ImageSubPath)) throw Invalid($"{field}.image_sub_path: set without {field}.image");
            if (string.IsNullOrEmpty(mount.HostPath) || !mount.HostPath.StartsWith('/'))
                throw Invalid($"{field}.host_path: '{mount.HostPath}' is not an absolute path");
            if (mount.RecursiveReadOnly && !mount.Readonly)
                throw Invalid($"{field}.recursive_read_only: needs {field}.readonly");
            if (mount.RecursiveReadOnly && mount.Propagation != Cri.V1.MountPropagation.PropagationPrivate)
                throw Invalid($"{field}.recursive_read_only: needs {field}.propagation PROPAGATION_PRIVATE, not {ProtoName(mount.Propagation)}");
            result.Add(new ContainerMount
            {
                ContainerPath = mount.ContainerPath,
                HostPath = mount.HostPath,
                Readonly = mount.Readonly,
                RecursiveReadonly = mount.RecursiveReadOnly,
                Propagation = mount.Propagation switch
                {
                    Cri.V1.MountPropagation.PropagationHostToContainer => Runtime.Spec.MountPropagation.HostToContainer,
                    Cri.V1.MountPropagation.PropagationBidirectional => Runtime.Spec.MountPropagation.Bidirectional,
                    _ => Runtime.Spec.MountPropagation.Private,
                },
            });
        }
        return result;
    }

    private static string ProtoName(Cri.V1.MountPropagation propagation) => propagation switch
    {
        Cri.V1.MountPropagation.PropagationHostToContainer => "PROPAGATION_HOST_TO_CONTAINER",
        Cri.V1.MountPropagation.PropagationBidirectional => "PROPAGATION_BIDIRECTIONAL",
        _ => ((int)propagation).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>A host path that does not exist is created as a directory, as containerd and CRI-O do.</summary>
    public static ContainerResources Resources(LinuxContainerResources? r) => r is null ? new ContainerResources() : new ContainerResources
    {
        CpuPeriod = r.CpuPeriod,
        CpuQuota = r.CpuQuota,
        CpuShares = r.CpuShares,
        MemoryLimitInBytes = r.MemoryLimitInBytes,
        MemorySwapLimitInBytes = r.MemorySwapLimitInBytes,
        OomScoreAdj = r.OomScoreAdj,
        CpusetCpus = r.CpusetCpus,
        CpusetMems = r.CpusetMems,
        HugepageLimits = [.. r.HugepageLimits.Select(h => KeyValuePair.Create(h.PageSize, h.Limit))],
        Unified = r.Unified,
    };

    public static LinuxContainerResources ToCri(ContainerResources r)
    {
        var resources = new LinuxContainerResources
        {
            CpuPeriod = r.CpuPeriod,
            CpuQuota = r.CpuQuota,
            CpuShares = r.CpuShares,
            MemoryLimitInBytes = r.MemoryLimitInBytes,
            MemorySwapLimitInBytes = r.MemorySwapLimitInBytes,
            OomScoreAdj = r.OomScoreAdj,
            CpusetCpus = r.CpusetCpus,
            CpusetMems = r.CpusetMems,
        };
        resources.HugepageLimits.AddRange(r.HugepageLimits.Select(h => new HugepageLimit { PageSize = h.Key, Limit = h.Value }));
        foreach (var (key, value) in r.Unified) resources.Unified[key] = value;
        return resources;
    }

    private static ContainerSecurity Security(LinuxContainerSecurityContext? s, ContainerManagerLookup lookup)
    {
        if (s is null) return new ContainerSecurity();
        var (seccomp, profile) = Seccomp(s.Seccomp);
        var pid = s.NamespaceOptions?.Pid switch
        {
            NamespaceMode.Pod => ContainerPidMode.Pod,
            NamespaceMode.Node => ContainerPidMode.Node,
            NamespaceMode.Target => ContainerPidMode.Target,
            _ => ContainerPidMode.Container,
        };
        string? target = null;
        if (pid == ContainerPidMode.Target)
        {
            var targetId = s.NamespaceOptions!.TargetId;
            var record = lookup(targetId) ?? throw new RpcException(new Status(StatusCode.NotFound,
                $"linux.security_context.namespace_options.target_id: container {targetId} not found"));
            if (record.State != RuntimeState.Running)
                throw new RpcException(new Status(StatusCode.FailedPrecondition,
                    $"linux.security_context.namespace_options.target_id: container {targetId} is not running"));
            target = $"/proc/{record.InitPid}/ns/pid";
        }
        return new ContainerSecurity
        {
            Privileged = s.Privileged,
            AddCapabilities = s.Capabilities is { } caps ? [.. caps.AddCapabilities] : [],
            DropCapabilities = s.Capabilities is { } drops ? [.. drops.DropCapabilities] : [],
            AddAmbientCapabilities = s.Capabilities is { } ambient ? [.. ambient.AddAmbientCapabilities] : [],
            RunAsUser = s.RunAsUser?.Value,
            RunAsUsername = string.IsNullOrEmpty(s.RunAsUsername) ? null : s.RunAsUsername,
            RunAsGroup = s.RunAsGroup?.Value,
            SupplementalGroups = [.. s.SupplementalGroups],
            SupplementalGroupsPolicy = s.SupplementalGroupsPolicy == Cri.V1.SupplementalGroupsPolicy.Strict
                ? Runtime.Spec.SupplementalGroupsPolicy.Strict
                : Runtime.Spec.SupplementalGroupsPolicy.Merge,
            ReadonlyRootfs = s.ReadonlyRootfs,
            NoNewPrivileges = s.NoNewPrivs,
            MaskedPaths = [.. s.MaskedPaths],
            ReadonlyPaths = [.. s.ReadonlyPaths],
            Seccomp = seccomp,
            SeccompProfile = profile,
            AppArmorProfile = AppArmor(s),
            Pid = pid,
            TargetPidNamespace = target,
        };
    }

    /// <summary>
    /// The Localhost AppArmor profile asked for (the <c>apparmor</c> field, else the deprecated <c>apparmor_profile</c>),
    /// which must be loaded; null for runtime/default and unconfined. Berth has no default profile of its own yet.
    /// </summary>
    private static string? AppArmor(LinuxContainerSecurityContext s)
    {
        const string Localhost = "localhost/";
        string field, name;
        if (s.Apparmor is { } profile)
        {
            if (profile.ProfileType != SecurityProfile.Types.ProfileType.Localhost) return null;
            (field, name) = ("linux.security_context.apparmor.localhost_ref", profile.LocalhostRef);
        }
#pragma warning disable CS0612 // deprecated in CRI, still sent by older kubelets and by critest
        else if (s.ApparmorProfile is { Length: > 0 } legacy)
#pragma warning restore CS0612
        {
            field = "linux.security_context.apparmor_profile";
            if (legacy is "runtime/default" or "unconfined") return null;
            if (!legacy.StartsWith(Localhost, StringComparison.Ordinal))
                throw Invalid($"{field}: '{legacy}' is none of runtime/default, unconfined and localhost/<profile>");
            name = legacy;
        }
        else return null;

        // kubelet sends the name with its "localhost/" prefix in both fields.
        if (name.StartsWith(Localhost, StringComparison.Ordinal)) name = name[Localhost.Length..];
        if (name.Length == 0) throw Invalid($"{field}: names no profile");
        if (!NodeProbe.AppArmorEnabled)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{field}: AppArmor profile '{name}' asked for, but AppArmor is not enabled on this node"));
        if (!NodeProbe.AppArmorProfileLoaded(name))
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{field}: AppArmor profile '{name}' is not loaded"));
        return name;
    }

    private static (SeccompMode, OciSeccomp?) Seccomp(SecurityProfile? profile)
    {
        if (profile is null) return (SeccompMode.Unconfined, null);
        switch (profile.ProfileType)
        {
            case SecurityProfile.Types.ProfileType.RuntimeDefault:
                return (SeccompMode.RuntimeDefault, null);
            case SecurityProfile.Types.ProfileType.Unconfined:
                return (SeccompMode.Unconfined, null);
            default:
                var path = profile.LocalhostRef;
                if (!path.StartsWith('/')) throw Invalid($"linux.security_context.seccomp.localhost_ref: '{path}' is not an absolute path");
                try
                {
                    var oci = JsonSerializer.Deserialize(File.ReadAllBytes(path), OciJsonContext.Default.OciSeccomp)
                              ?? throw Invalid($"linux.security_context.seccomp.localhost_ref: {path} is empty");
                    return (SeccompMode.Localhost, oci);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
                {
                    throw Invalid($"linux.security_context.seccomp.localhost_ref: cannot use {path}: {e.Message}");
                }
        }
    }

    public static ImageSettings Image(ImageRecord image, ImageConfigDocument? config, string requested) => new()
    {
        ImageRef = image.Id,
        ImageName = image.RepoTags.FirstOrDefault() ?? requested,
        Entrypoint = config?.Config?.Entrypoint ?? [],
        Cmd = config?.Config?.Cmd ?? [],
        Env = config?.Config?.Env ?? [],
        WorkingDir = config?.Config?.WorkingDir,
        User = config?.Config?.User,
        Volumes = (config?.Config?.Volumes?.Keys ?? Enumerable.Empty<string>()).ToDictionary(v => v, _ => "", StringComparer.Ordinal),
    };

    public static PodSettings Pod(SandboxRecord sandbox) => new()
    {
        Id = sandbox.Id,
        Name = sandbox.Name,
        Namespace = sandbox.Namespace,
        Uid = sandbox.Uid,
        Hostname = sandbox.Hostname,
        Privileged = sandbox.Privileged,
        CgroupParent = sandbox.CgroupParent,
        NamespacePaths = sandbox.NamespacePaths,
        HostnameFile = sandbox.HostnamePath,
        HostsFile = sandbox.HostsPath,
        ResolvConfFile = sandbox.ResolvConfPath,
        ShmPath = sandbox.ShmPath,
        UserNamespace = sandbox.UserNamespace is { } userns
            ? new PodUserNamespace(
                sandbox.NamespacePaths["user"],
                new OciIdMapping(userns.Uids.ContainerId, userns.Uids.HostId, userns.Uids.Length),
                new OciIdMapping(userns.Gids.ContainerId, userns.Gids.HostId, userns.Gids.Length))
            : null,
    };

    public static Cri.V1.ContainerState StateOf(RuntimeState state) => state switch
    {
        RuntimeState.Created => Cri.V1.ContainerState.ContainerCreated,
        RuntimeState.Running => Cri.V1.ContainerState.ContainerRunning,
        RuntimeState.Exited => Cri.V1.ContainerState.ContainerExited,
        _ => Cri.V1.ContainerState.ContainerUnknown,
    };

    private static ContainerMetadata Metadata(ContainerRecord record) => new() { Name = record.Name, Attempt = record.Attempt };

    // A record never changes (a change stores a new one), so its list item is made once and shared by every
    // ListContainers until the record is replaced: kubelet relists each second, and 500 containers were about
    // 10,000 objects a call (map entries most of them), whose collections made the call's tail.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ContainerRecord, Container> ListItems = new();

    /// <summary>The record as a ListContainers item; shared between calls, so never to be changed.</summary>
    public static Container ToListItem(ContainerRecord record) => ListItems.GetValue(record, NewListItem);

    private static Container NewListItem(ContainerRecord record)
    {
        var item = new Container
        {
            Id = record.Id,
            PodSandboxId = record.PodId,
            Metadata = Metadata(record),
            Image = new ImageSpec { Image = record.Image },
            ImageRef = record.ImageRef,
            ImageId = record.ImageRef,
            State = StateOf(record.State),
            CreatedAt = record.CreatedAt,
        };
        item.Labels.Add(record.Labels);
        item.Annotations.Add(record.Annotations);
        return item;
    }

    public static ContainerStatus ToStatus(ContainerRecord record)
    {
        var status = new ContainerStatus
        {
            Id = record.Id,
            Metadata = Metadata(record),
            State = StateOf(record.State),
            CreatedAt = record.CreatedAt,
            StartedAt = record.StartedAt,
            FinishedAt = record.FinishedAt,
            ExitCode = record.ExitCode,
            Image = new ImageSpec { Image = record.Image },
            ImageRef = record.ImageRef,
            ImageId = record.ImageRef,
            Reason = record.Reason,
            Message = record.Message,
            LogPath = record.LogPath ?? "",
            Resources = new Cri.V1.ContainerResources { Linux = ToCri(record.Resources) },
        };
        status.Labels.Add(record.Labels);
        status.Annotations.Add(record.Annotations);
        status.Mounts.AddRange(record.Mounts.Select(m => new CriMount
        {
            ContainerPath = m.ContainerPath,
            HostPath = m.HostPath,
            Image = m.Image is { } source ? new ImageSpec { Image = source.ImageRef } : null,
            ImageSubPath = m.Image?.SubPath ?? "",
            Readonly = m.Readonly,
            RecursiveReadOnly = m.RecursiveReadonly,
            Propagation = m.Propagation switch
            {
                Runtime.Spec.MountPropagation.HostToContainer => Cri.V1.MountPropagation.PropagationHostToContainer,
                Runtime.Spec.MountPropagation.Bidirectional => Cri.V1.MountPropagation.PropagationBidirectional,
                _ => Cri.V1.MountPropagation.PropagationPrivate,
            },
        }));
        if (record.User is { } user)
        {
            var linux = new LinuxContainerUser { Uid = user.Uid, Gid = user.Gid };
            // The primary group is among the process's groups, as the kernel reports them.
            linux.SupplementalGroups.AddRange(new[] { (long)user.Gid }.Concat((user.AdditionalGids ?? []).Select(g => (long)g)).Distinct().Order());
            status.User = new ContainerUser { Linux = linux };
        }
        return status;
    }

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));
}

/// <summary>Finds a container by ID (for a TARGET PID namespace).</summary>
internal delegate ContainerRecord? ContainerManagerLookup(string id);
