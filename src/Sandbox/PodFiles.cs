using System.Text;

namespace Berth.Sandbox;

/// <summary>The pod's /etc/hostname, /etc/hosts and /etc/resolv.conf, written once for its containers to mount.</summary>
internal static class PodFiles
{
    public const string HostsFile = "hosts";
    public const string HostnameFile = "hostname";
    public const string ResolvConfFile = "resolv.conf";

    /// <summary>
    /// Writes the three files; with <paramref name="owner"/> (a pod user namespace's root) they are that ID's, so the
    /// pod's root may write them without an idmapped mount (tmpfs, where they live, takes one only from Linux 6.3).
    /// </summary>
    public static void Write(string directory, string hostname, DnsSettings? dns, IReadOnlyList<string> ips, (uint Uid, uint Gid)? owner)
    {
        WriteFiles(directory, hostname, dns, ips);
        if (owner is not var (uid, gid)) return;
        foreach (var name in new[] { HostnameFile, HostsFile, ResolvConfFile })
        {
            var path = Path.Combine(directory, name);
            if (Native.Linux.Chown(path, uid, gid) != 0) throw Native.Linux.Error("chown", path, Native.Linux.LastError);
        }
    }

    private static void WriteFiles(string directory, string hostname, DnsSettings? dns, IReadOnlyList<string> ips)
    {
        File.WriteAllText(Path.Combine(directory, HostnameFile), hostname + "\n");

        var hosts = new StringBuilder();
        hosts.Append("127.0.0.1\tlocalhost\n");
        hosts.Append("::1\tlocalhost ip6-localhost ip6-loopback\n");
        hosts.Append("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n");
        foreach (var ip in ips) hosts.Append(ip).Append('\t').Append(hostname).Append('\n');
        File.WriteAllText(Path.Combine(directory, HostsFile), hosts.ToString());

        var resolv = Path.Combine(directory, ResolvConfFile);
        if (dns is null || dns.Servers.Count + dns.Searches.Count + dns.Options.Count == 0)
        {
            // No DNSConfig: the node's own resolver settings, as kubelet's "Default" policy means.
            File.Copy("/etc/resolv.conf", resolv, overwrite: true);
            return;
        }
        var text = new StringBuilder();
        if (dns.Searches.Count > 0) text.Append("search ").AppendJoin(' ', dns.Searches).Append('\n');
        foreach (var server in dns.Servers) text.Append("nameserver ").Append(server).Append('\n');
        if (dns.Options.Count > 0) text.Append("options ").AppendJoin(' ', dns.Options).Append('\n');
        File.WriteAllText(resolv, text.ToString());
    }
}
