using System.Net;
using System.Text.Json.Nodes;

namespace Berth.Cni;

/// <summary>An ADD result in one model, whatever spec version the plugin spoke (0.3.x, 0.4.0, 1.x).</summary>
public sealed record CniResult
{
    public required string CniVersion { get; init; }
    public IReadOnlyList<CniInterface> Interfaces { get; init; } = [];
    public IReadOnlyList<CniIpConfig> Ips { get; init; } = [];
    public IReadOnlyList<CniRoute> Routes { get; init; } = [];
    public CniDns Dns { get; init; } = new();

    /// <summary>The result exactly as the last plugin printed it: the next plugin's prevResult, and what the cache keeps.</summary>
    public required JsonObject Raw { get; init; }

    /// <summary>Addresses on interfaces inside the sandbox (those with a <c>sandbox</c> path), IPv4 first.</summary>
    public IEnumerable<IPAddress> SandboxAddresses =>
        Ips.Where(ip => ip.Interface is not { } index || index < Interfaces.Count && Interfaces[index].Sandbox is { Length: > 0 })
           .Select(ip => ip.Address.Address)
           .OrderBy(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 0 : 1);
}

public sealed record CniInterface(string Name, string? Mac, string? Sandbox);

public sealed record CniIpConfig(IPNetworkAddress Address, IPAddress? Gateway, int? Interface);

public sealed record CniRoute(IPNetworkAddress Destination, IPAddress? Gateway);

public sealed record CniDns
{
    public IReadOnlyList<string> Nameservers { get; init; } = [];
    public string? Domain { get; init; }
    public IReadOnlyList<string> Search { get; init; } = [];
    public IReadOnlyList<string> Options { get; init; } = [];
}

/// <summary>An address with its prefix, as CNI writes them ("10.88.0.5/16"): unlike IPNetwork, the host bits stay.</summary>
public sealed record IPNetworkAddress(IPAddress Address, int PrefixLength)
{
    public static IPNetworkAddress Parse(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var address) || !int.TryParse(text.AsSpan(slash + 1), out var prefix))
            throw new CniException($"'{text}' is not an address with a prefix length");
        var max = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        if (prefix < 0 || prefix > max) throw new CniException($"'{text}' has a prefix length out of range");
        return new IPNetworkAddress(address, prefix);
    }

    public override string ToString() => $"{Address}/{PrefixLength}";
}
