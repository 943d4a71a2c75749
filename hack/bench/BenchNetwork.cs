using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// A node's pod network for one runtime: a bridge of its own on a private /16 (room for 250 pods and the churn),
/// host-local leases in a directory of the benchmark's. Disposing removes the bridge, which the plugin leaves.
/// </summary>
internal sealed class BenchNetwork : IDisposable
{
    private BenchNetwork(string bridge, string ipamDirectory)
    {
        Bridge = bridge;
        IpamDirectory = ipamDirectory;
    }

    public string Bridge { get; }

    public string IpamDirectory { get; }

    /// <summary>Writes the network's conflist into <paramref name="confDirectory"/>; leases go to <paramref name="ipamDirectory"/>.</summary>
    public static BenchNetwork Create(string name, string confDirectory, string ipamDirectory, int secondOctet)
    {
        var bridge = $"bs{Random.Shared.Next(0, 0xFFFFFF):x6}";
        Directory.CreateDirectory(confDirectory);
        File.WriteAllText(Path.Combine(confDirectory, "10-bench.conflist"),
            $$$"""{"cniVersion":"1.0.0","name":"{{{name}}}","plugins":[{"type":"bridge","bridge":"{{{bridge}}}","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","dataDir":"{{{ipamDirectory}}}","ranges":[[{"subnet":"10.{{{secondOctet}}}.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}""");
        return new BenchNetwork(bridge, ipamDirectory);
    }

    /// <summary>Addresses host-local holds (a file per address; its lock and last-reserved files are not leases).</summary>
    public int Leases() =>
        Directory.Exists(IpamDirectory)
            ? Directory.EnumerateFiles(IpamDirectory, "*", SearchOption.AllDirectories).Count(f => Path.GetFileName(f).StartsWith("10.", StringComparison.Ordinal))
            : 0;

    /// <summary>Veth peers on this bridge: one per pod that is still wired.</summary>
    public int Veths() =>
        Host.Run("ip", "-o", "link", "show", "master", Bridge) is { ExitCode: 0 } links
            ? links.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length
            : 0;

    public void Dispose() => Host.Run("ip", "link", "delete", Bridge);
}
