using k8s.Models;
using Berth.Cri.V1;

namespace Berth.Cli.Pods;

/// <summary>
/// The pod's DNS as the kubelet's configurer builds it. With no cluster DNS on a bare node, ClusterFirst falls back to
/// Default (the node's resolv.conf), as the kubelet does when it has no --cluster-dns; None takes dnsConfig alone;
/// dnsConfig's servers and searches are appended and its options override by name.
/// </summary>
internal static class PodDns
{
    private const int MaxServers = 3;
    private const int MaxSearches = 32;

    public static DNSConfig Config(V1PodSpec spec, string resolvConf = "/etc/resolv.conf")
    {
        var config = new DNSConfig();
        var options = new List<string>();
        switch (spec.DnsPolicy)
        {
            case null or "" or "ClusterFirst" or "ClusterFirstWithHostNet" or "Default":
                ReadHost(resolvConf, config, options);
                break;
            case "None":
                if (spec.DnsConfig is null) throw new ManifestException("spec.dnsConfig: dnsPolicy None needs a dnsConfig");
                break;
            default:
                throw new ManifestException($"spec.dnsPolicy: '{spec.DnsPolicy}' is not ClusterFirst, ClusterFirstWithHostNet, Default or None");
        }
        if (spec.DnsConfig is { } extra)
        {
            foreach (var server in extra.Nameservers ?? []) if (!config.Servers.Contains(server)) config.Servers.Add(server);
            foreach (var search in extra.Searches ?? []) if (!config.Searches.Contains(search)) config.Searches.Add(search);
            foreach (var option in extra.Options ?? [])
            {
                options.RemoveAll(o => o.Split(':')[0] == option.Name);
                options.Add(option.Value is null ? option.Name : $"{option.Name}:{option.Value}");
            }
        }
        if (config.Servers.Count > MaxServers) throw new ManifestException($"spec.dnsConfig.nameservers: at most {MaxServers} servers in all (the node's and the pod's)");
        if (config.Searches.Count > MaxSearches) throw new ManifestException($"spec.dnsConfig.searches: at most {MaxSearches} domains in all");
        config.Options.AddRange(options);
        return config;
    }

    private static void ReadHost(string path, DNSConfig config, List<string> options)
    {
        if (!File.Exists(path)) return;
        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Split('#', ';')[0];
            var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2) continue;
            switch (fields[0])
            {
                case "nameserver" when config.Servers.Count < MaxServers:
                    config.Servers.Add(fields[1]);
                    break;
                case "search":
                    config.Searches.Clear();
                    config.Searches.AddRange(fields.Skip(1));
                    break;
                case "options":
                    options.AddRange(fields.Skip(1));
                    break;
            }
        }
    }
}
