using System.Net;
using System.Text.Json.Nodes;

namespace Berth.Cni;

/// <summary>
/// Reads plugin results. 0.3.0 through 1.x share one shape (interfaces, ips with an interface index, routes,
/// dns); 0.3.x and 0.4.0 also carry a per-IP <c>version</c> that 1.0 dropped, which is simply ignored.
/// </summary>
public static class CniResultParser
{
    public static CniResult Parse(JsonObject result)
    {
        var version = result["cniVersion"]?.GetValue<string>() ?? throw new CniException("the result has no cniVersion");
        if (version.StartsWith("0.1", StringComparison.Ordinal) || version.StartsWith("0.2", StringComparison.Ordinal))
            throw new CniException($"result version {version} is not supported (0.3.0 or newer is)");

        var interfaces = (result["interfaces"] as JsonArray ?? [])
            .Select(i => new CniInterface(
                i?["name"]?.GetValue<string>() ?? throw new CniException("an interface has no name"),
                i["mac"]?.GetValue<string>(),
                i["sandbox"]?.GetValue<string>()))
            .ToList();
        var ips = (result["ips"] as JsonArray ?? [])
            .Select(ip => new CniIpConfig(
                IPNetworkAddress.Parse(ip?["address"]?.GetValue<string>() ?? throw new CniException("an IP has no address")),
                ip["gateway"]?.GetValue<string>() is { } gateway ? IPAddress.Parse(gateway) : null,
                ip["interface"]?.GetValue<int>()))
            .ToList();
        var routes = (result["routes"] as JsonArray ?? [])
            .Select(r => new CniRoute(
                IPNetworkAddress.Parse(r?["dst"]?.GetValue<string>() ?? throw new CniException("a route has no dst")),
                r["gw"]?.GetValue<string>() is { } gw ? IPAddress.Parse(gw) : null))
            .ToList();
        var dns = result["dns"] as JsonObject;
        return new CniResult
        {
            CniVersion = version,
            Interfaces = interfaces,
            Ips = ips,
            Routes = routes,
            Dns = new CniDns
            {
                Nameservers = Strings(dns?["nameservers"]),
                Domain = dns?["domain"]?.GetValue<string>(),
                Search = Strings(dns?["search"]),
                Options = Strings(dns?["options"]),
            },
            Raw = result,
        };
    }

    private static List<string> Strings(JsonNode? node) =>
        node is JsonArray array ? [.. array.Select(n => n?.GetValue<string>() ?? "")] : [];
}
