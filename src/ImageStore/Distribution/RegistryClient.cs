using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Berth.ImageStore.Content;
using Berth.ImageStore.Oci;
using Berth.ImageStore.References;

namespace Berth.ImageStore.Distribution;

/// <summary>
/// An OCI distribution (v2) client for pulls: manifests and blobs from a registry's mirrors,
/// then the registry itself, with basic and bearer-token auth and redirects to blob storage.
/// One instance serves the daemon; HTTP connections are pooled per endpoint.
/// </summary>
public sealed class RegistryClient : IDisposable
{
    private const int MaxRedirects = 5;
    private readonly IReadOnlyDictionary<string, RegistryHostOptions> _hosts;
    private readonly RegistryHostOptions _defaultHost;
    private readonly ConcurrentDictionary<string, HttpClient> _clients = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CachedToken> _tokens = new(StringComparer.Ordinal);

    private readonly TimeSpan _progressTimeout;

    /// <param name="hosts">Per-registry endpoints and TLS settings, keyed by registry host.</param>
    /// <param name="progressTimeout">How long a blob download may bring no byte before it fails; zero for no limit.</param>
    /// <param name="defaultHost">The settings of a host <paramref name="hosts"/> does not name.</param>
    public RegistryClient(IReadOnlyDictionary<string, RegistryHostOptions> hosts, TimeSpan progressTimeout, RegistryHostOptions? defaultHost = null)
    {
        _hosts = hosts;
        _defaultHost = defaultHost ?? new RegistryHostOptions();
        _progressTimeout = progressTimeout;
        foreach (var (host, options) in defaultHost is null ? hosts : hosts.Append(new("_default", defaultHost)))
        {
            if (options.CaFile is { } ca && !File.Exists(ca))
                throw new InvalidImageRequestException($"registry {host}: CA file '{ca}' does not exist");
        }
    }

    /// <summary>A manifest or index, verified against the digest it was asked by (if any).</summary>
    internal async Task<FetchedManifest> GetManifestAsync(ImageReference image, string tagOrDigest, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(image, $"manifests/{tagOrDigest}", MediaTypes.ManifestAccept, credentials, 0, cancellationToken);
        var content = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        var digest = Digest.Compute(content);
        if (Digest.TryParse(tagOrDigest, out var requested) && requested != digest)
            throw new ImageFormatException($"{image.Name}@{requested}: the registry sent a manifest with digest {digest}");

        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is null or "application/json" or "text/plain" || !MediaTypes.IsIndex(mediaType) && !MediaTypes.IsManifest(mediaType) && !MediaTypes.IsSchema1(mediaType))
            mediaType = SniffMediaType(content) ?? mediaType ?? "";
        if (MediaTypes.IsSchema1(mediaType))
            throw new ImageFormatException($"{image}: Docker image manifest schema 1 is not supported; push the image with schema 2 or OCI");
        return new FetchedManifest(content, mediaType, digest);
    }

    /// <summary>
    /// Opens a blob's content stream, resumed from where it stopped if the connection drops, and failing if it
    /// stalls (<see cref="ResumableBlobStream"/>); the caller verifies it (<see cref="VerifyingStream"/>).
    /// </summary>
    internal async Task<Stream> OpenBlobAsync(ImageReference image, Digest digest, RegistryCredentials? credentials, CancellationToken cancellationToken) =>
        await ResumableBlobStream.OpenAsync($"{image.Name} blob {digest}", async (offset, token) =>
        {
            var response = await SendAsync(image, $"blobs/{digest}", "*/*", credentials, offset, token);
            try
            {
                var start = response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From is { } from ? from : 0;
                return (new ResponseStream(await response.Content.ReadAsStreamAsync(token), response), start);
            }
            catch
            {
                response.Dispose();
                throw;
            }
        }, _progressTimeout, cancellationToken);

    internal static string? SniffMediaType(byte[] content)
    {
        try
        {
            var document = JsonSerializer.Deserialize(content, OciJsonContext.Default.ManifestDocument);
            if (document is null) return null;
            if (document.MediaType is { Length: > 0 } declared) return declared;
            if (document.SchemaVersion == 1) return MediaTypes.DockerSchema1;
            if (document.Manifests is not null) return MediaTypes.OciIndex;
            if (document.Config is not null) return MediaTypes.OciManifest;
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Tries each endpoint of the image's registry in order; the first good answer wins.</summary>
    private async Task<HttpResponseMessage> SendAsync(
        ImageReference image, string path, string accept, RegistryCredentials? credentials, long rangeStart, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        Exception? lastError = null;
        var endpoints = Endpoints(image.Registry);
        for (var i = 0; i < endpoints.Count; i++)
        {
            var endpoint = endpoints[i];
            var isLast = i == endpoints.Count - 1;
            try
            {
                var response = await SendToEndpointAsync(endpoint, image, path, accept, credentials, rangeStart, cancellationToken);
                if (response.IsSuccessStatusCode) return response;
                using (response)
                {
                    var error = await DescribeFailureAsync(endpoint, image, path, response, cancellationToken);
                    if (isLast) throw error;
                    failures.Add(error.Message);
                    lastError = error;
                }
            }
            catch (HttpRequestException e) when (!cancellationToken.IsCancellationRequested)
            {
                var error = new RegistryException($"{endpoint.BaseUri}: {e.Message}", e);
                if (isLast) throw failures.Count == 0 ? error : new RegistryException($"{string.Join("; ", failures)}; {error.Message}", e);
                failures.Add(error.Message);
                lastError = error;
            }
        }
        throw lastError ?? new RegistryException($"no endpoint for {image.Registry}");
    }

    private async Task<HttpResponseMessage> SendToEndpointAsync(
        Endpoint endpoint, ImageReference image, string path, string accept, RegistryCredentials? credentials, long rangeStart, CancellationToken cancellationToken)
    {
        var uri = new Uri(endpoint.BaseUri, $"{image.Repository}/{path}");
        var scope = $"repository:{image.Repository}:pull";
        var tokenKey = $"{endpoint.BaseUri}|{scope}|{CredentialKey(credentials)}";

        var authorization = credentials?.RegistryToken is { Length: > 0 } registryToken
            ? new AuthenticationHeaderValue("Bearer", registryToken)
            : _tokens.TryGetValue(tokenKey, out var cached) && cached.IsValid ? cached.Header : null;

        var response = await SendFollowingRedirectsAsync(endpoint.Client, uri, accept, authorization, rangeStart, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Unauthorized) return response;

        var challenge = response.Headers.WwwAuthenticate.Select(h => AuthChallenge.Parse(h.ToString())).FirstOrDefault(c => c is not null);
        response.Dispose();
        if (challenge is null)
            throw new RegistryAuthException($"{uri}: 401 Unauthorized without a WWW-Authenticate challenge");

        var granted = await AuthorizeAsync(endpoint, challenge, scope, credentials, cancellationToken);
        authorization = granted.Header;
        _tokens[tokenKey] = granted;
        response = await SendFollowingRedirectsAsync(endpoint.Client, uri, accept, authorization, rangeStart, cancellationToken);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            response.Dispose();
            _tokens.TryRemove(tokenKey, out _);
            throw new RegistryAuthException(credentials is null || credentials.IsEmpty
                ? $"{image.Name}: the registry requires credentials ({uri.GetLeftPart(UriPartial.Authority)})"
                : $"{image.Name}: the registry rejected the credentials ({uri.GetLeftPart(UriPartial.Authority)})");
        }
        return response;
    }

    private static async Task<CachedToken> AuthorizeAsync(
        Endpoint endpoint, AuthChallenge challenge, string scope, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        var (username, password) = UserAndPassword(credentials);
        if (challenge.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            if (username is null)
                throw new RegistryAuthException($"{endpoint.BaseUri}: the registry requires credentials (basic auth)");
            return new CachedToken(
                new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{username}:{password}"))),
                DateTimeOffset.MaxValue);
        }
        if (!challenge.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase) || challenge.Realm is null)
            throw new RegistryAuthException($"{endpoint.BaseUri}: unsupported auth challenge '{challenge.Scheme}'");

        var realm = new UriBuilder(challenge.Realm);
        var query = new StringBuilder(realm.Query.TrimStart('?'));
        void Add(string key, string? value)
        {
            if (string.IsNullOrEmpty(value)) return;
            if (query.Length > 0) query.Append('&');
            query.Append(key).Append('=').Append(Uri.EscapeDataString(value));
        }

        using var request = new HttpRequestMessage();
        if (credentials?.IdentityToken is { Length: > 0 } refreshToken)
        {
            // OAuth2 refresh-token grant, as docker's token spec describes for identity tokens.
            request.Method = HttpMethod.Post;
            request.RequestUri = realm.Uri;
            request.Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "refresh_token",
                ["refresh_token"] = refreshToken,
                ["service"] = challenge.Service ?? "",
                ["scope"] = challenge.Scope ?? scope,
                ["client_id"] = "berth",
            });
        }
        else
        {
            Add("service", challenge.Service);
            Add("scope", challenge.Scope ?? scope);
            realm.Query = query.ToString();
            request.Method = HttpMethod.Get;
            request.RequestUri = realm.Uri;
            if (username is not null)
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{username}:{password}")));
        }

        using var response = await endpoint.Client.SendAsync(request, cancellationToken);
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            var anonymous = username is null && credentials?.IdentityToken is not { Length: > 0 };
            throw new RegistryAuthException(anonymous
                ? $"{endpoint.BaseUri}: the registry requires credentials (token server {realm.Uri.GetLeftPart(UriPartial.Path)} refused anonymous access)"
                : $"token server {realm.Uri.GetLeftPart(UriPartial.Path)} rejected the credentials ({(int)response.StatusCode})");
        }
        if (!response.IsSuccessStatusCode)
            throw new RegistryException($"token server {realm.Uri.GetLeftPart(UriPartial.Path)} answered {(int)response.StatusCode}");
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        var token = JsonSerializer.Deserialize(body, RegistryJsonContext.Default.TokenResponse);
        var value = token?.Token is { Length: > 0 } t ? t : token?.AccessToken;
        if (string.IsNullOrEmpty(value))
            throw new RegistryException($"token server {realm.Uri.GetLeftPart(UriPartial.Path)} sent no token");
        // The token spec's default lifetime is 60 s; renew a little early so a token never expires mid-pull.
        var lifetime = TimeSpan.FromSeconds(Math.Max(token?.ExpiresIn ?? 60, 60)) - TimeSpan.FromSeconds(10);
        return new CachedToken(new AuthenticationHeaderValue("Bearer", value), DateTimeOffset.UtcNow + lifetime);
    }

    private static (string? Username, string? Password) UserAndPassword(RegistryCredentials? credentials)
    {
        if (credentials is null) return (null, null);
        if (!string.IsNullOrEmpty(credentials.Username)) return (credentials.Username, credentials.Password ?? "");
        if (!string.IsNullOrEmpty(credentials.Auth))
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(credentials.Auth));
            }
            catch (FormatException)
            {
                throw new InvalidImageRequestException("auth.auth is not base64 of \"username:password\"");
            }
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0) throw new InvalidImageRequestException("auth.auth does not decode to \"username:password\"");
            return (decoded[..colon], decoded[(colon + 1)..]);
        }
        return (null, null);
    }

    private static string CredentialKey(RegistryCredentials? credentials) =>
        credentials is null || credentials.IsEmpty
            ? "anonymous"
            : Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(
                $"{credentials.Username}\0{credentials.Password}\0{credentials.Auth}\0{credentials.IdentityToken}\0{credentials.RegistryToken}")));

    /// <summary>Redirects are followed by hand so that credentials never travel to another host (blob storage).</summary>
    private static async Task<HttpResponseMessage> SendFollowingRedirectsAsync(
        HttpClient client, Uri uri, string accept, AuthenticationHeaderValue? authorization, long rangeStart, CancellationToken cancellationToken)
    {
        var origin = uri.GetLeftPart(UriPartial.Authority);
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Accept.ParseAdd(accept);
            if (rangeStart > 0) request.Headers.Range = new RangeHeaderValue(rangeStart, null);
            if (authorization is not null && uri.GetLeftPart(UriPartial.Authority) == origin)
                request.Headers.Authorization = authorization;
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if ((int)response.StatusCode is < 300 or >= 400 || response.Headers.Location is null) return response;
            if (hop == MaxRedirects)
            {
                response.Dispose();
                throw new RegistryException($"{origin}: more than {MaxRedirects} redirects");
            }
            uri = new Uri(uri, response.Headers.Location);
            response.Dispose();
        }
    }

    private static async Task<ImageStoreException> DescribeFailureAsync(
        Endpoint endpoint, ImageReference image, string path, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = "";
        try
        {
            body = await response.Content.ReadAsStringAsync(cancellationToken);
        }
        catch (HttpRequestException)
        {
        }
        if (body.Length > 300) body = body[..300];
        var what = $"{image.Name} {path.Replace("manifests/", "manifest ", StringComparison.Ordinal).Replace("blobs/", "blob ", StringComparison.Ordinal)}";
        return response.StatusCode switch
        {
            HttpStatusCode.NotFound => new ImageNotFoundException($"{what}: not found at {endpoint.BaseUri}"),
            HttpStatusCode.Forbidden => new RegistryAuthException($"{what}: access denied by {endpoint.BaseUri}"),
            _ => new RegistryException($"{what}: {endpoint.BaseUri} answered {(int)response.StatusCode} {response.ReasonPhrase} {body}".TrimEnd()),
        };
    }

    private sealed record Endpoint(Uri BaseUri, HttpClient Client);

    private List<Endpoint> Endpoints(string registry)
    {
        var options = _hosts.GetValueOrDefault(registry) ?? _defaultHost;
        var endpoints = new List<Endpoint>();
        foreach (var mirror in options.Server is null ? options.Mirrors : options.Mirrors.Append(options.Server))
        {
            var path = mirror.AbsolutePath.TrimEnd('/');
            var baseUri = new Uri($"{mirror.Scheme}://{mirror.Authority}{(path.EndsWith("/v2", StringComparison.Ordinal) ? path : path + "/v2")}/");
            var mirrorOptions = _hosts.GetValueOrDefault(mirror.Authority) ?? options;
            endpoints.Add(new Endpoint(baseUri, ClientFor(mirror.Authority, mirrorOptions)));
        }
        if (options.Server is not null) return endpoints;
        var host = registry == ImageReference.DockerHub ? "registry-1.docker.io" : registry;
        // Loopback registries speak plain HTTP unless TLS settings say otherwise, as with containerd's localhost.
        var tlsConfigured = options.CaFile is not null || options.SkipVerify;
        var scheme = options.Insecure || IsLoopback(registry) && !tlsConfigured ? "http" : "https";
        endpoints.Add(new Endpoint(new Uri($"{scheme}://{host}/v2/"), ClientFor(host, options)));
        return endpoints;
    }

    private static bool IsLoopback(string host)
    {
        var name = host.StartsWith('[') ? host[..(host.IndexOf(']', StringComparison.Ordinal) + 1)] : host.Split(':')[0];
        return name == "localhost" || IPAddress.TryParse(name.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address);
    }

    private HttpClient ClientFor(string host, RegistryHostOptions options) => _clients.GetOrAdd(host, _ =>
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
        };
        if (options.SkipVerify)
        {
#pragma warning disable CA5359 // skip_verify is the operator's explicit, per-host choice.
            handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
#pragma warning restore CA5359
        }
        else if (options.CaFile is { } caFile)
        {
            var trusted = new X509Certificate2Collection();
            trusted.ImportFromPemFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (errors == SslPolicyErrors.None) return true;
                if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch)) return false;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            };
        }
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    });

    public void Dispose()
    {
        foreach (var client in _clients.Values) client.Dispose();
    }

    private sealed record CachedToken(AuthenticationHeaderValue Header, DateTimeOffset Expires)
    {
        public bool IsValid => DateTimeOffset.UtcNow < Expires;
    }

    /// <summary>A response body that disposes its response with it.</summary>
    private sealed class ResponseStream(Stream inner, HttpResponseMessage response) : ReadOnlyStream
    {
        public override int Read(Span<byte> buffer) => inner.Read(buffer);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                response.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}

internal sealed record TokenResponse
{
    [JsonPropertyName("token")] public string? Token { get; init; }
    [JsonPropertyName("access_token")] public string? AccessToken { get; init; }
    [JsonPropertyName("expires_in")] public int? ExpiresIn { get; init; }
}

[JsonSerializable(typeof(TokenResponse))]
internal sealed partial class RegistryJsonContext : JsonSerializerContext;
