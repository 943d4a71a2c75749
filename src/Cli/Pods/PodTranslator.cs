using System.Globalization;
using k8s.Models;
using Berth.Cri.V1;

namespace Berth.Cli.Pods;

/// <summary>
/// A Pod's sandbox and containers as CRI configs, following the kubelet's kuberuntime (generatePodSandboxConfig,
/// generateContainerConfig): its labels, log layout, cgroup parent by QoS class, port mappings and namespaces.
/// </summary>
internal sealed class PodTranslator(V1Pod pod, NodeFacts node)
{
    public const string PodNameLabel = "io.kubernetes.pod.name";
    public const string PodNamespaceLabel = "io.kubernetes.pod.namespace";
    public const string PodUidLabel = "io.kubernetes.pod.uid";
    public const string ContainerNameLabel = "io.kubernetes.container.name";

    /// <summary>Marks what berth play made, so <c>--down</c> removes nothing else.</summary>
    public const string PlayLabel = "io.berth.play";

    /// <summary>berth play's pods live beside the kubelet's (<c>kubepods</c>), never inside: the kubelet removes pod cgroups it does not know.</summary>
    public const string CgroupRoot = "berth-play";

    public V1Pod Pod => pod;

    public string Name => pod.Metadata.Name;

    public string Namespace => pod.Metadata.NamespaceProperty is { Length: > 0 } ns ? ns : "default";

    public string Uid => pod.Metadata.Uid;

    public string LogDirectory => $"/var/log/pods/{Namespace}_{Name}_{Uid}";

    public QosClass Qos { get; } = KubeletResources.Qos(pod.Spec);

    /// <summary>cgroupfs: <c>/berth-play/burstable/pod&lt;uid&gt;</c>; systemd: <c>berth_play-burstable-pod&lt;uid_&gt;.slice</c>.</summary>
    public string CgroupParent
    {
        get
        {
            var qos = Qos switch { QosClass.Guaranteed => "", QosClass.Burstable => "burstable", _ => "besteffort" };
            if (!node.SystemdCgroups) return qos.Length == 0 ? $"/{CgroupRoot}/pod{Uid}" : $"/{CgroupRoot}/{qos}/pod{Uid}";
            var root = CgroupRoot.Replace('-', '_');
            var pod = "pod" + Uid.Replace('-', '_');
            return qos.Length == 0 ? $"{root}-{pod}.slice" : $"{root}-{qos}-{pod}.slice";
        }
    }

    public PodSandboxConfig Sandbox(UserNamespace? userNamespace)
    {
        var spec = pod.Spec;
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = Name, Namespace = Namespace, Uid = Uid, Attempt = 0 },
            Hostname = spec.HostNetwork == true ? "" : Hostname(),
            LogDirectory = LogDirectory,
            DnsConfig = PodDns.Config(spec),
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = CgroupParent,
                SecurityContext = PodSecurity.Sandbox(spec, "spec.securityContext"),
                Resources = KubeletResources.Pod(spec, node),
            },
        };
        if (userNamespace is not null) config.Linux.SecurityContext.NamespaceOptions.UsernsOptions = userNamespace;
        foreach (var (key, value) in pod.Metadata.Labels ?? new Dictionary<string, string>()) config.Labels[key] = value;
        config.Labels[PodNameLabel] = Name;
        config.Labels[PodNamespaceLabel] = Namespace;
        config.Labels[PodUidLabel] = Uid;
        config.Labels[PlayLabel] = "true";
        foreach (var (key, value) in pod.Metadata.Annotations ?? new Dictionary<string, string>()) config.Annotations[key] = value;
        foreach (var sysctl in spec.SecurityContext?.Sysctls ?? []) config.Linux.Sysctls[sysctl.Name] = sysctl.Value;
        foreach (var (container, index) in spec.Containers.Select((c, i) => (c, i)))
        {
            var ports = container.Ports ?? [];
            for (var p = 0; p < ports.Count; p++)
            {
                var port = ports[p];
                var field = $"spec.containers[{index}].ports[{p}]";
                config.PortMappings.Add(new PortMapping
                {
                    ContainerPort = port.ContainerPort,
                    // The API server's defaulting: with the host's network, the host port is the container port.
                    HostPort = port.HostPort ?? (spec.HostNetwork == true ? port.ContainerPort : 0),
                    HostIp = port.HostIP ?? "",
                    Protocol = port.Protocol switch
                    {
                        null or "TCP" => Protocol.Tcp,
                        "UDP" => Protocol.Udp,
                        "SCTP" => Protocol.Sctp,
                        _ => throw new ManifestException($"{field}.protocol: '{port.Protocol}' is not TCP, UDP or SCTP"),
                    },
                });
            }
        }
        return config;
    }

    private string Hostname()
    {
        var name = pod.Spec.Hostname is { Length: > 0 } hostname ? hostname : Name;
        // The kubelet truncates to 63 characters and trims what would end the label badly.
        return (name.Length > 63 ? name[..63] : name).TrimEnd('-', '.');
    }

    public ContainerConfig Container(V1Container container, string field, int attempt, string imageId, PodVolumes volumes, string? podIp)
    {
        var env = PodEnvironment.Resolve(pod, container, field, node, podIp);
        var variables = new Dictionary<string, string>();
        foreach (var (key, value) in env) variables[key] = value;
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = container.Name, Attempt = (uint)attempt },
            Image = new ImageSpec { Image = imageId, UserSpecifiedImage = container.Image },
            WorkingDir = container.WorkingDir ?? "",
            LogPath = $"{container.Name}/{attempt}.log",
            Stdin = container.Stdin == true,
            StdinOnce = container.StdinOnce == true,
            Tty = container.Tty == true,
            Linux = new LinuxContainerConfig
            {
                Resources = KubeletResources.Linux(container.Resources, node, Qos),
                SecurityContext = PodSecurity.Container(pod.Spec, container, field),
            },
        };
        config.Command.AddRange((container.Command ?? []).Select(c => PodEnvironment.Expand(c, variables)));
        config.Args.AddRange((container.Args ?? []).Select(a => PodEnvironment.Expand(a, variables)));
        config.Envs.AddRange(env.Select(e => new KeyValue { Key = e.Key, Value = Google.Protobuf.ByteString.CopyFromUtf8(e.Value) }));
        config.Mounts.AddRange(volumes.Mounts(pod.Spec, container, field));
        config.Labels[ContainerNameLabel] = container.Name;
        config.Labels[PodNameLabel] = Name;
        config.Labels[PodNamespaceLabel] = Namespace;
        config.Labels[PodUidLabel] = Uid;
        config.Annotations["io.kubernetes.container.restartCount"] = attempt.ToString(CultureInfo.InvariantCulture);
        config.Annotations["io.kubernetes.pod.terminationGracePeriod"] = GracePeriod.ToString(CultureInfo.InvariantCulture);
        CheckResources(container, field);
        return config;
    }

    /// <summary>The seconds StopContainer waits before killing (30 unless the pod says).</summary>
    public long GracePeriod => pod.Spec.TerminationGracePeriodSeconds ?? 30;

    private static void CheckResources(V1Container container, string field)
    {
        foreach (var (kind, map) in new[] { ("limits", container.Resources?.Limits), ("requests", container.Resources?.Requests) })
        {
            foreach (var name in (map ?? new Dictionary<string, ResourceQuantity>()).Keys)
            {
                if (name is "cpu" or "memory" || name.StartsWith("hugepages-", StringComparison.Ordinal)) continue;
                throw new ManifestException($"{field}.resources.{kind}.{name}: berth play honours cpu, memory and hugepages-* only");
            }
        }
    }
}
