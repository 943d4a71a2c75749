using System.Net;
using System.Text.Json.Nodes;

namespace Berth.Cni.Tests;

public sealed class CniResultParserTests
{
    [Theory]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void Results_of_every_supported_version_parse_into_one_model(string version)
    {
        // 0.3.x/0.4.0 put a per-IP "version"; 1.x dropped it. Both parse alike.
        var ipVersion = version.StartsWith('0') ? "\"version\":\"4\"," : "";
        var json = """
            {"cniVersion":"@V@",
             "interfaces":[{"name":"cni0","mac":"aa:bb:cc:dd:ee:ff"},{"name":"veth1"},{"name":"eth0","mac":"0a:58:0a:58:00:05","sandbox":"/run/berth/netns/abc"}],
             "ips":[{@IPV@"address":"10.88.0.5/16","gateway":"10.88.0.1","interface":2},
                    {"address":"fd00::5/64","gateway":"fd00::1","interface":2}],
             "routes":[{"dst":"0.0.0.0/0"},{"dst":"10.0.0.0/8","gw":"10.88.0.254"}],
             "dns":{"nameservers":["10.88.0.1"],"domain":"cluster.local","search":["svc.cluster.local"],"options":["ndots:5"]}}
            """.Replace("@V@", version, StringComparison.Ordinal).Replace("@IPV@", ipVersion, StringComparison.Ordinal);

        var result = CniResultParser.Parse((JsonObject)JsonNode.Parse(json)!);

        Assert.Equal(version, result.CniVersion);
        Assert.Equal(3, result.Interfaces.Count);
        Assert.Equal("/run/berth/netns/abc", result.Interfaces[2].Sandbox);
        Assert.Equal(IPAddress.Parse("10.88.0.5"), result.Ips[0].Address.Address);
        Assert.Equal(16, result.Ips[0].Address.PrefixLength);
        Assert.Equal(IPAddress.Parse("10.88.0.1"), result.Ips[0].Gateway);
        Assert.Equal(2, result.Ips[0].Interface);
        Assert.Equal([IPAddress.Parse("10.88.0.5"), IPAddress.Parse("fd00::5")], result.SandboxAddresses);
        Assert.Equal("0.0.0.0/0", result.Routes[0].Destination.ToString());
        Assert.Equal(IPAddress.Parse("10.88.0.254"), result.Routes[1].Gateway);
        Assert.Equal(["10.88.0.1"], result.Dns.Nameservers);
        Assert.Equal("cluster.local", result.Dns.Domain);
        Assert.Equal(["ndots:5"], result.Dns.Options);
    }

    [Theory]
    [InlineData("""{"ips":[]}""", "no cniVersion")]
    [InlineData("""{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"}}""", "not supported")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2"}]}""", "not an address with a prefix length")]
    [InlineData("""{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/33"}]}""", "prefix length out of range")]
    public void Malformed_results_are_refused(string json, string reason)
    {
        var error = Assert.Throws<CniException>(() => CniResultParser.Parse((JsonObject)JsonNode.Parse(json)!));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }
}
