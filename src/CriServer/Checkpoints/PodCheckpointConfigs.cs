using Berth.Cri.V1;
using Berth.CriServer.Services;
using Berth.Runtime.Containers;
using Berth.Sandbox;

namespace Berth.CriServer.Checkpoints;

/// <summary>
/// The CRI configurations a checkpointed pod is brought back with when RestorePod brings none: what berthd keeps of
/// the pod and its containers, as the messages kubelet sent. A container's command and environment are not among
/// them; CRIU brings its processes back as they were, so they are not needed.
/// </summary>
internal static class PodCheckpointConfigs
{
    public static PodSandboxConfig PodConfigOf(SandboxRecord pod)
    {
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = pod.Name, Namespace = pod.Namespace, Uid = pod.Uid, Attempt = pod.Attempt },
            Hostname = pod.Hostname,
            LogDirectory = pod.LogDirectory ?? "",
            DnsConfig = DnsOf(pod.ResolvConfPath),
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = pod.CgroupParent ?? "",
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    Privileged = pod.Privileged,
                    NamespaceOptions = SandboxMapper.ToStatus(pod).Linux.Namespaces.Options,
                },
            },
        };
        config.PortMappings.AddRange(pod.PortMappings.Select(p => new Cri.V1.PortMapping
        {
            Protocol = p.Protocol switch { "udp" => Protocol.Udp, "sctp" => Protocol.Sctp, _ => Protocol.Tcp },
            ContainerPort = p.ContainerPort,
            HostPort = p.HostPort,
            HostIp = p.HostIp,
        }));
        config.Labels.Add(pod.Labels);
        config.Annotations.Add(pod.Annotations);
        return config;
    }

    public static ContainerConfig ContainerConfigOf(ContainerRecord container, SandboxRecord pod)
    {
        var status = ContainerMapper.ToStatus(container);
        var logPath = container.LogPath ?? "";
        if (pod.LogDirectory is { Length: > 0 } directory && logPath.StartsWith(directory.TrimEnd('/') + "/", StringComparison.Ordinal))
            logPath = logPath[(directory.TrimEnd('/').Length + 1)..];
        var config = new ContainerConfig
        {
            Metadata = status.Metadata,
            Image = new ImageSpec { Image = container.ImageRef },
            LogPath = logPath,
            Stdin = container.Stdin,
            StdinOnce = container.StdinOnce,
            Linux = new LinuxContainerConfig { Resources = status.Resources.Linux },
        };
        config.Labels.Add(container.Labels);
        config.Annotations.Add(container.Annotations);
        config.Mounts.AddRange(status.Mounts);
        return config;
    }

    /// <summary>The pod's resolv.conf as kubelet's DNSConfig; null when it is the node's (kubelet sent none).</summary>
    private static DNSConfig? DnsOf(string resolvConf)
    {
        if (!File.Exists(resolvConf)) return null;
        var dns = new DNSConfig();
        foreach (var line in File.ReadAllLines(resolvConf))
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length < 2) continue;
            switch (words[0])
            {
                case "nameserver": dns.Servers.Add(words[1]); break;
                case "search": dns.Searches.AddRange(words.Skip(1)); break;
                case "options": dns.Options.AddRange(words.Skip(1)); break;
            }
        }
        return dns;
    }
}
