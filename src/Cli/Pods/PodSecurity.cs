using k8s.Models;
using Berth.Cri.V1;

namespace Berth.Cli.Pods;

/// <summary>
/// Security contexts as the kubelet maps them (kuberuntime's security_context.go): the container's fields over the
/// pod's, the pod's supplemental groups and fsGroup added, no_new_privs from allowPrivilegeEscalation: false, the
/// default masked and read-only /proc paths unless procMount is Unmasked, seccomp Unconfined when unset.
/// </summary>
internal static class PodSecurity
{
    /// <summary>Where Localhost seccomp profiles live, as the kubelet's --root-dir/seccomp.</summary>
    public const string SeccompRoot = "/var/lib/kubelet/seccomp";

    private static readonly string[] MaskedPaths =
    [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ];

    private static readonly string[] ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    public static LinuxSandboxSecurityContext Sandbox(V1PodSpec spec, string field)
    {
        var pod = spec.SecurityContext;
        var context = new LinuxSandboxSecurityContext
        {
            NamespaceOptions = new NamespaceOption
            {
                Network = spec.HostNetwork == true ? NamespaceMode.Node : NamespaceMode.Pod,
                Pid = spec.HostPID == true ? NamespaceMode.Node : spec.ShareProcessNamespace == true ? NamespaceMode.Pod : NamespaceMode.Container,
                Ipc = spec.HostIPC == true ? NamespaceMode.Node : NamespaceMode.Pod,
            },
            Privileged = spec.Containers.Concat(spec.InitContainers ?? []).Any(c => c.SecurityContext?.Privileged == true),
            Seccomp = Seccomp(pod?.SeccompProfile, $"{field}.seccompProfile") ?? new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined },
        };
        if (pod?.RunAsUser is { } user) context.RunAsUser = new Int64Value { Value = user };
        if (pod?.RunAsGroup is { } group) context.RunAsGroup = new Int64Value { Value = group };
        context.SupplementalGroups.AddRange(SupplementalGroups(pod));
        if (AppArmor(pod?.AppArmorProfile, $"{field}.appArmorProfile") is { } apparmor) context.Apparmor = apparmor;
        return context;
    }

    public static LinuxContainerSecurityContext Container(V1PodSpec spec, V1Container container, string field)
    {
        var pod = spec.SecurityContext;
        var own = container.SecurityContext;
        var context = new LinuxContainerSecurityContext
        {
            Privileged = own?.Privileged == true,
            ReadonlyRootfs = own?.ReadOnlyRootFilesystem == true,
            NoNewPrivs = own?.AllowPrivilegeEscalation == false,
            Seccomp = Seccomp(own?.SeccompProfile, $"{field}.securityContext.seccompProfile")
                      ?? Seccomp(pod?.SeccompProfile, "spec.securityContext.seccompProfile")
                      ?? new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined },
            NamespaceOptions = Sandbox(spec, "spec.securityContext").NamespaceOptions,
        };
        if ((own?.RunAsUser ?? pod?.RunAsUser) is { } user) context.RunAsUser = new Int64Value { Value = user };
        if ((own?.RunAsGroup ?? pod?.RunAsGroup) is { } group) context.RunAsGroup = new Int64Value { Value = group };
        context.SupplementalGroups.AddRange(SupplementalGroups(pod));
        if (own?.Capabilities is { } capabilities)
        {
            context.Capabilities = new Capability();
            context.Capabilities.AddCapabilities.AddRange(capabilities.Add ?? []);
            context.Capabilities.DropCapabilities.AddRange(capabilities.Drop ?? []);
        }
        if ((AppArmor(own?.AppArmorProfile, $"{field}.securityContext.appArmorProfile") ?? AppArmor(pod?.AppArmorProfile, "spec.securityContext.appArmorProfile")) is { } apparmor)
            context.Apparmor = apparmor;
        switch (own?.ProcMount)
        {
            case null or "Default":
                context.MaskedPaths.AddRange(MaskedPaths);
                context.ReadonlyPaths.AddRange(ReadonlyPaths);
                break;
            case "Unmasked":
                break;
            default:
                throw new ManifestException($"{field}.securityContext.procMount: '{own.ProcMount}' is not Default or Unmasked");
        }
        return context;
    }

    /// <summary>runAsNonRoot: the user that will run must not be 0, and a named image user can't be checked (as the kubelet says).</summary>
    public static void CheckNonRoot(V1PodSpec spec, V1Container container, string field, Image image)
    {
        if ((container.SecurityContext?.RunAsNonRoot ?? spec.SecurityContext?.RunAsNonRoot) != true) return;
        var user = container.SecurityContext?.RunAsUser ?? spec.SecurityContext?.RunAsUser;
        if (user == 0) throw new ManifestException($"{field}: runAsNonRoot is set but runAsUser is 0");
        if (user is not null) return;
        if (image.Uid is { } uid)
        {
            if (uid.Value == 0) throw new ManifestException($"{field}: runAsNonRoot is set but image {image.RepoTags.FirstOrDefault() ?? image.Id} runs as root (uid 0)");
            return;
        }
        if (!string.IsNullOrEmpty(image.Username))
            throw new ManifestException($"{field}: runAsNonRoot is set and image {image.RepoTags.FirstOrDefault() ?? image.Id} has a non-numeric user ({image.Username}): can't verify it is not root");
        throw new ManifestException($"{field}: runAsNonRoot is set but image {image.RepoTags.FirstOrDefault() ?? image.Id} runs as root (no user)");
    }

    private static IEnumerable<long> SupplementalGroups(V1PodSecurityContext? pod)
    {
        foreach (var group in pod?.SupplementalGroups ?? []) if (group is { } id) yield return id;
        if (pod?.FsGroup is { } fsGroup) yield return fsGroup;
    }

    private static SecurityProfile? Seccomp(V1SeccompProfile? profile, string field) => profile?.Type switch
    {
        null => null,
        "RuntimeDefault" => new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault },
        "Unconfined" => new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined },
        "Localhost" when !string.IsNullOrEmpty(profile.LocalhostProfile) && !profile.LocalhostProfile.Split('/').Contains("..") => new SecurityProfile
        {
            ProfileType = SecurityProfile.Types.ProfileType.Localhost,
            LocalhostRef = Path.Combine(SeccompRoot, profile.LocalhostProfile),
        },
        "Localhost" => throw new ManifestException($"{field}.localhostProfile: a Localhost profile needs a relative path under {SeccompRoot}"),
        _ => throw new ManifestException($"{field}.type: '{profile.Type}' is not RuntimeDefault, Unconfined or Localhost"),
    };

    private static SecurityProfile? AppArmor(V1AppArmorProfile? profile, string field) => profile?.Type switch
    {
        null => null,
        "RuntimeDefault" => new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault },
        "Unconfined" => new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined },
        "Localhost" when !string.IsNullOrEmpty(profile.LocalhostProfile) => new SecurityProfile
        {
            ProfileType = SecurityProfile.Types.ProfileType.Localhost,
            LocalhostRef = profile.LocalhostProfile,
        },
        "Localhost" => throw new ManifestException($"{field}.localhostProfile: a Localhost profile needs the profile's name"),
        _ => throw new ManifestException($"{field}.type: '{profile.Type}' is not RuntimeDefault, Unconfined or Localhost"),
    };
}
