using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// A bearer token server for docker-registry's token auth, per the distribution token spec:
/// GET with basic credentials (or POST with an OAuth2 refresh token) returns a JWT signed with a key
/// whose self-signed certificate the registry trusts (rootcertbundle), carried in the <c>x5c</c> header.
/// </summary>
public sealed class TokenServer : IDisposable
{
    public const string Service = "berth-test-registry";
    public const string Issuer = "berth-test-issuer";

    /// <summary>The refresh token this server accepts as an identity token.</summary>
    public const string RefreshToken = "berth-refresh-token";

    private readonly HttpListener _listener;
    private readonly RSA _key;
    private readonly X509Certificate2 _certificate;
    private readonly CancellationTokenSource _stop = new();
    private int _issued;

    private TokenServer(HttpListener listener, RSA key, X509Certificate2 certificate, string certificateFile, int port)
    {
        _listener = listener;
        _key = key;
        _certificate = certificate;
        CertificateFile = certificateFile;
        Realm = $"http://127.0.0.1:{port}/token";
    }

    public string Realm { get; }
    public string CertificateFile { get; }

    /// <summary>Tokens handed out so far: a test can see whether the client reused a cached one.</summary>
    public int Issued => Volatile.Read(ref _issued);

    public static TokenServer Start(string directory)
    {
        var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=berth-test-token-signer", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var certificateFile = Path.Combine(directory, "token.crt");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem());

        var port = RegistryServer.FreePort();
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        var server = new TokenServer(listener, key, certificate, certificateFile, port);
        _ = Task.Run(server.ServeAsync);
        return server;
    }

    /// <summary>A token for <paramref name="scope"/>, as a client would get one (for registry_token tests).</summary>
    public string IssueToken(string scope) => CreateJwt(RegistryServer.Username, scope);

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException)
            {
                return;
            }
            try
            {
                await HandleAsync(context);
            }
            catch (Exception e)
            {
                context.Response.StatusCode = 500;
                await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(e.Message));
            }
            finally
            {
                context.Response.Close();
            }
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        var request = context.Request;
        string? user = null;
        string scope;
        if (request.HttpMethod == "POST")
        {
            using var reader = new StreamReader(request.InputStream);
            var form = ParseQuery(await reader.ReadToEndAsync());
            if (form.GetValueOrDefault("grant_type") == "refresh_token" && form.GetValueOrDefault("refresh_token") == RefreshToken)
                user = RegistryServer.Username;
            scope = form.GetValueOrDefault("scope") ?? "";
        }
        else
        {
            var header = request.Headers["Authorization"];
            if (header is not null && header.StartsWith("Basic ", StringComparison.Ordinal))
            {
                var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..]));
                if (decoded == $"{RegistryServer.Username}:{RegistryServer.Password}") user = RegistryServer.Username;
            }
            scope = request.QueryString["scope"] ?? "";
        }

        if (user is null)
        {
            context.Response.StatusCode = 401;
            return;
        }
        Interlocked.Increment(ref _issued);
        var token = CreateJwt(user, scope);
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = 300,
        });
        context.Response.ContentType = "application/json";
        await context.Response.OutputStream.WriteAsync(body);
    }

    private string CreateJwt(string subject, string scope)
    {
        var access = new List<Dictionary<string, object>>();
        foreach (var item in scope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            // repository:<name>:<actions>; the name may contain ':' only in the registry part, which scopes never have.
            var parts = item.Split(':');
            if (parts.Length != 3) continue;
            access.Add(new Dictionary<string, object> { ["type"] = parts[0], ["name"] = parts[1], ["actions"] = parts[2].Split(',') });
        }
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["typ"] = "JWT",
            ["alg"] = "RS256",
            ["x5c"] = new[] { Convert.ToBase64String(_certificate.RawData) },
        });
        var claims = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = Service,
            ["exp"] = now + 300,
            ["nbf"] = now - 10,
            ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = access,
        });
        var signingInput = $"{Base64Url(header)}.{Base64Url(claims)}";
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return $"{signingInput}.{Base64Url(signature)}";
    }

    private static string Base64Url(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static Dictionary<string, string> ParseQuery(string text) =>
        text.Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2))
            .ToDictionary(p => Uri.UnescapeDataString(p[0]), p => p.Length > 1 ? Uri.UnescapeDataString(p[1].Replace('+', ' ')) : "");

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        _key.Dispose();
        _certificate.Dispose();
        _stop.Dispose();
    }
}
