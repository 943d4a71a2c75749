namespace Berth.CriServer.Configuration;

/// <summary>
/// containerd's registry host files: <c>&lt;config_path&gt;/&lt;host&gt;/hosts.toml</c> (<c>_default</c> for every host
/// without one), read as containerd reads them, so an operator's mirror files work unchanged. <c>server</c> replaces
/// the registry's endpoint; each <c>[host."URL"]</c> is a mirror tried first, in file order, with its own
/// <c>ca</c> and <c>skip_verify</c>. Hosts without the <c>pull</c> capability are left out, as containerd does.
/// </summary>
public static class HostsDirectory
{
    public const string DefaultPath = "/etc/berth/certs.d";
    public const string DefaultHost = "_default";

    /// <summary>Registry settings by host (<c>_default</c> included), and TLS settings of each mirror by its authority.</summary>
    public static IReadOnlyDictionary<string, RegistryConfig> Load(string directory)
    {
        var hosts = new Dictionary<string, RegistryConfig>(StringComparer.Ordinal);
        if (!Directory.Exists(directory)) return hosts;
        foreach (var hostDirectory in Directory.EnumerateDirectories(directory).Order(StringComparer.Ordinal))
        {
            var file = Path.Combine(hostDirectory, "hosts.toml");
            if (!File.Exists(file)) continue;
            // The directory is the host as image names write it: docker.io, 127.0.0.1:5000.
            var host = Path.GetFileName(hostDirectory);
            try
            {
                Parse(File.ReadAllText(file), host, hosts);
            }
            catch (ConfigException e)
            {
                throw new ConfigException($"{file}: {e.Message}");
            }
            catch (IOException e)
            {
                throw new ConfigException($"{file}: cannot read it: {e.Message}");
            }
        }
        return hosts;
    }

    internal static void Parse(string text, string host, Dictionary<string, RegistryConfig> hosts)
    {
        var root = TomlSection.Parse(text);
        var server = root.Endpoint("server");
        var serverTls = Tls(root, "");
        var mirrors = new List<Uri>();
        foreach (var (url, mirror) in root.Section("host")?.Tables() ?? [])
        {
            var endpoint = TomlSection.ParseEndpoint($"host.\"{url}\"", url);
            var capabilities = mirror.StringArray("capabilities") ?? ["pull", "resolve"];
            foreach (var capability in capabilities)
                if (capability is not ("pull" or "resolve" or "push")) throw new ConfigException($"host.\"{url}\".capabilities: '{capability}' is not pull, resolve or push");
            var tls = Tls(mirror, $"host.\"{url}\".");
            if (mirror.Boolean("override_path") == true)
                throw new ConfigException($"host.\"{url}\".override_path: not supported; give the URL without it (Berth adds /v2 unless the path ends in /v2)");
            mirror.RejectUnknownKeys();
            if (!capabilities.Contains("pull")) continue;
            mirrors.Add(endpoint);
            if (tls.CaFile is not null || tls.SkipVerify)
            {
                if (hosts.TryGetValue(endpoint.Authority, out var other) && (other.CaFile != tls.CaFile || other.SkipVerify != tls.SkipVerify))
                    throw new ConfigException($"host.\"{url}\": {endpoint.Authority} has other TLS settings in another hosts.toml");
                hosts[endpoint.Authority] = tls;
            }
        }
        root.RejectUnknownKeys();
        hosts[host] = serverTls with { Mirrors = mirrors, Server = server };
    }

    private static RegistryConfig Tls(TomlSection section, string prefix)
    {
        var cas = section.StringOrStrings("ca") ?? [];
        if (cas.Count > 1) throw new ConfigException($"{prefix}ca: Berth takes one CA bundle per host; concatenate the PEM files");
        if (cas.Count == 1 && !Path.IsPathFullyQualified(cas[0])) throw new ConfigException($"{prefix}ca: '{cas[0]}' must be an absolute path");
        if (section.Section("header") is not null) throw new ConfigException($"{prefix}header: extra request headers are not supported");
        if (section.StringOrStrings("client") is { Count: > 0 }) throw new ConfigException($"{prefix}client: client certificates are not supported");
        return new RegistryConfig { CaFile = cas.Count == 1 ? cas[0] : null, SkipVerify = section.Boolean("skip_verify") ?? false };
    }
}
