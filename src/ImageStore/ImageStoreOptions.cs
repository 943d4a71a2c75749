namespace Berth.ImageStore;

/// <summary>How the image store is set up; berthd maps its config onto this.</summary>
public sealed record ImageStoreOptions
{
    /// <summary>Directory for blobs, snapshots and image metadata.</summary>
    public required string Root { get; init; }

    /// <summary>The platform picked from multi-platform indexes.</summary>
    public string Os { get; init; } = "linux";
    public string Architecture { get; init; } = "amd64";
    public string? Variant { get; init; }

    /// <summary>Layers downloaded and unpacked at once, per pull.</summary>
    public int MaxConcurrentDownloads { get; init; } = 3;

    /// <summary>How long a layer download may bring no byte before the pull fails; zero for no limit.</summary>
    public TimeSpan PullProgressTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Per-registry settings keyed by registry host (<c>docker.io</c>, <c>127.0.0.1:5000</c>).</summary>
    public IReadOnlyDictionary<string, RegistryHostOptions> Registries { get; init; } = new Dictionary<string, RegistryHostOptions>();

    /// <summary>The settings of a registry host <see cref="Registries"/> does not name (hosts.toml's <c>_default</c>).</summary>
    public RegistryHostOptions? DefaultRegistry { get; init; }
}

/// <summary>Settings for one registry host, in the spirit of containerd's hosts.toml.</summary>
public sealed record RegistryHostOptions
{
    /// <summary>Endpoints tried in order before the registry itself, e.g. <c>http://127.0.0.1:5000</c>.</summary>
    public IReadOnlyList<Uri> Mirrors { get; init; } = [];

    /// <summary>
    /// Replaces the registry's own endpoint (containerd's hosts.toml <c>server</c>): with it set, nothing is
    /// sent to the host the image name says, which is what an air-gapped node wants.
    /// </summary>
    public Uri? Server { get; init; }

    /// <summary>Plain HTTP to this host. Loopback hosts default to it unless <see cref="CaFile"/> or <see cref="SkipVerify"/> is set.</summary>
    public bool Insecure { get; init; }

    /// <summary>A PEM bundle of CAs trusted for this host, beside the system's.</summary>
    public string? CaFile { get; init; }

    /// <summary>Accept any TLS certificate. For tests and emergencies only.</summary>
    public bool SkipVerify { get; init; }
}

/// <summary>Credentials for one pull, as the CRI AuthConfig carries them.</summary>
public sealed record RegistryCredentials
{
    public string? Username { get; init; }
    public string? Password { get; init; }

    /// <summary>base64("username:password"), as in a docker config.json.</summary>
    public string? Auth { get; init; }

    /// <summary>An OAuth2 refresh token, exchanged at the token endpoint.</summary>
    public string? IdentityToken { get; init; }

    /// <summary>A bearer token sent to the registry as it is.</summary>
    public string? RegistryToken { get; init; }

    public bool IsEmpty => Username is null && Password is null && Auth is null && IdentityToken is null && RegistryToken is null;
}
