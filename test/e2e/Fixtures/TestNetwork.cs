using System.Diagnostics;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// A CNI network of the test's own: a bridge with a random name on a random private /24, host-local IPAM
/// keeping its leases inside the test's directory. Disposing removes the bridge, the one thing the bridge
/// plugin leaves behind, and the portmap plugin's shared nat chains when this network brought them.
/// </summary>
public sealed class TestNetwork : IDisposable
{
    // portmap's chains, shared by every pod it serves, which its DEL leaves in place (empty but for these rules).
    private static readonly string[][] PortmapJumps =
    [
        ["PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"],
        ["OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"],
        ["POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"],
    ];

    private static readonly string[] PortmapChains = ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"];

    private readonly bool _ownsPortmapChains;

    private TestNetwork(string bridge, string subnetPrefix, string ipamDir, bool ownsPortmapChains)
    {
        Bridge = bridge;
        SubnetPrefix = subnetPrefix;
        IpamDir = ipamDir;
        _ownsPortmapChains = ownsPortmapChains;
    }

    public string Bridge { get; }

    /// <summary>The first three octets, e.g. "10.213.47".</summary>
    public string SubnetPrefix { get; }

    public string IpamDir { get; }

    /// <summary>Writes the network config into a berthd's CNI directory; extra plugins follow the bridge.</summary>
    public static TestNetwork Create(BerthDaemon daemon, params string[] extraPlugins)
    {
        var random = Random.Shared;
        var bridge = $"bt{random.Next(0, 0xFFFFFF):x6}";
        var prefix = $"10.{random.Next(200, 250)}.{random.Next(1, 254)}";
        var ipamDir = Path.Combine(daemon.Directory, "ipam");
        var plugins = new List<string>
        {
            $$$"""{"type":"bridge","bridge":"{{{bridge}}}","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","dataDir":"{{{ipamDir}}}","ranges":[[{"subnet":"{{{prefix}}}.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}}""",
        };
        plugins.AddRange(extraPlugins);
        File.WriteAllText(Path.Combine(daemon.CniConfDir, "10-berth-test.conflist"),
            $$"""{"cniVersion":"1.0.0","name":"berth-test","plugins":[{{string.Join(",", plugins)}}]}""");
        var portmap = extraPlugins.Any(p => p.Contains("\"portmap\"", StringComparison.Ordinal));
        var chainsThere = Host.Run("iptables", "-t", "nat", "-S", PortmapChains[0]).ExitCode == 0;
        return new TestNetwork(bridge, prefix, ipamDir, portmap && !chainsThere);
    }

    /// <summary>IP leases host-local still holds (files named by address).</summary>
    public IReadOnlyList<string> Leases() =>
        Directory.Exists(Path.Combine(IpamDir, "berth-test"))
            ? [.. Directory.EnumerateFiles(Path.Combine(IpamDir, "berth-test")).Select(Path.GetFileName).Where(n => n!.StartsWith(SubnetPrefix, StringComparison.Ordinal))!]
            : [];

    public void Dispose()
    {
        Host.Run("ip", "link", "delete", Bridge);
        if (!_ownsPortmapChains) return;
        foreach (var jump in PortmapJumps) Host.Run("iptables", ["-t", "nat", "-D", .. jump]);
        foreach (var chain in PortmapChains) Host.Run("iptables", "-t", "nat", "-F", chain);
        foreach (var chain in PortmapChains) Host.Run("iptables", "-t", "nat", "-X", chain);
    }
}

/// <summary>Runs host tools (ip, nsenter, busybox) for the tests' checks.</summary>
public static class Host
{
    public static (int ExitCode, string Output) Run(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(30_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} hung");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>Runs a command inside the namespaces pinned at the given files.</summary>
    public static (int ExitCode, string Output) InNamespaces(IReadOnlyDictionary<string, string> namespaces, params string[] command)
    {
        var args = new List<string>();
        if (namespaces.TryGetValue("network", out var net)) args.Add($"--net={net}");
        if (namespaces.TryGetValue("uts", out var uts)) args.Add($"--uts={uts}");
        if (namespaces.TryGetValue("ipc", out var ipc)) args.Add($"--ipc={ipc}");
        args.Add("--");
        args.AddRange(command);
        return Run("nsenter", [.. args]);
    }

    /// <summary>Mount points at or under <paramref name="directory"/>, from this process's mountinfo.</summary>
    public static string[] MountsUnder(string directory) =>
        [.. File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(p => p == directory || p.StartsWith(directory + "/", StringComparison.Ordinal))];

    public static int VethCount() => Run("ip", "-o", "link", "show", "type", "veth").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
}
