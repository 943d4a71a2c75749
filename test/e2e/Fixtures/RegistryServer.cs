using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Berth.E2E.Tests.Fixtures;

public enum RegistryMode
{
    /// <summary>Plain HTTP, no auth.</summary>
    Plain,

    /// <summary>HTTPS with a certificate from a test CA (<see cref="RegistryServer.CaFile"/>).</summary>
    Tls,

    /// <summary>HTTP with htpasswd basic auth.</summary>
    Basic,

    /// <summary>HTTP with bearer tokens from <see cref="TokenServer"/>, which checks basic credentials.</summary>
    Token,
}

/// <summary>
/// Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a random port and a temp storage dir.
/// </summary>
public sealed class RegistryServer : IAsyncDisposable
{
    public const string Username = "berth";
    public const string Password = "s3cret-pass";

    private readonly Process _process;
    private readonly StringBuilder _log;
    private readonly TokenServer? _tokens;

    private RegistryServer(string directory, int port, RegistryMode mode, Process process, StringBuilder log, TokenServer? tokens)
    {
        Directory = directory;
        Port = port;
        Mode = mode;
        _process = process;
        _log = log;
        _tokens = tokens;
    }

    public string Directory { get; }
    public int Port { get; }
    public RegistryMode Mode { get; }

    /// <summary><c>127.0.0.1:port</c>, the registry part of image names.</summary>
    public string Host => $"127.0.0.1:{Port}";

    public Uri BaseUri => new($"{(Mode == RegistryMode.Tls ? "https" : "http")}://{Host}/");

    /// <summary>The test CA's certificate (PEM), for TLS mode.</summary>
    public string CaFile => Path.Combine(Directory, "ca.crt");

    public TokenServer Tokens => _tokens ?? throw new InvalidOperationException("not a token-auth registry");

    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    public static async Task<RegistryServer> StartAsync(RegistryMode mode)
    {
        TestEnvironment.RequireRoot();
        var binary = TestEnvironment.RequireTool("/usr/bin/docker-registry", "docker-registry");
        var directory = System.IO.Directory.CreateTempSubdirectory("berth-registry-").FullName;
        var port = FreePort();
        var config = new StringBuilder($"""
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: {directory}/data
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}
              secret: berth-test-secret

            """);

        TokenServer? tokens = null;
        switch (mode)
        {
            case RegistryMode.Tls:
                TestCertificates.WriteCaAndServer(directory);
                config.Append($"""
                      tls:
                        certificate: {directory}/server.crt
                        key: {directory}/server.key

                    """);
                break;
            case RegistryMode.Basic:
                await WriteHtpasswdAsync(Path.Combine(directory, "htpasswd"));
                config.Append($"""
                    auth:
                      htpasswd:
                        realm: berth-test
                        path: {directory}/htpasswd

                    """);
                break;
            case RegistryMode.Token:
                tokens = TokenServer.Start(directory);
                config.Append($"""
                    auth:
                      token:
                        realm: {tokens.Realm}
                        service: {TokenServer.Service}
                        issuer: {TokenServer.Issuer}
                        rootcertbundle: {tokens.CertificateFile}

                    """);
                break;
        }
        var configPath = Path.Combine(directory, "config.yml");
        await File.WriteAllTextAsync(configPath, config.ToString());

        var (process, log) = ChildProcess.Start(binary, ["serve", configPath]);

        var server = new RegistryServer(directory, port, mode, process, log, tokens);
        try
        {
            await server.WaitReadyAsync();
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    /// <summary>An HTTP client trusting the test CA; the pusher and the tests use it.</summary>
    public HttpClient CreateHttpClient()
    {
        var handler = new SocketsHttpHandler();
        if (Mode == RegistryMode.Tls)
        {
            var ca = X509CertificateLoader.LoadCertificateFromFile(CaFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                if (certificate is null) return false;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            };
        }
        return new HttpClient(handler) { BaseAddress = BaseUri };
    }

    private async Task WaitReadyAsync()
    {
        using var client = CreateHttpClient();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"docker-registry exited with {_process.ExitCode}:\n{Log}");
            try
            {
                using var response = await client.GetAsync("v2/");
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException)
            {
            }
            if (deadline.Elapsed > TimeSpan.FromSeconds(20))
                throw new TimeoutException($"docker-registry on {Host} was not ready in 20s:\n{Log}");
            await Task.Delay(50);
        }
    }

    private static async Task WriteHtpasswdAsync(string path)
    {
        // The registry reads bcrypt only; apache2-utils' htpasswd makes it (hack/setup installs it).
        var htpasswd = TestEnvironment.RequireTool("/usr/bin/htpasswd", "apache2-utils");
        var info = new ProcessStartInfo(htpasswd) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { "-Bbn", Username, Password }) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var line = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException("htpasswd failed");
        await File.WriteAllTextAsync(path, line);
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        _tokens?.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>A test CA and a server certificate for 127.0.0.1, made with .NET's own APIs.</summary>
internal static class TestCertificates
{
    public static void WriteCaAndServer(string directory)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Berth Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        serverRequest.CertificateExtensions.Add(san.Build());
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        using var server = serverRequest.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29), RandomNumberGenerator.GetBytes(16));

        File.WriteAllText(Path.Combine(directory, "ca.crt"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "server.crt"), server.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "server.key"), serverKey.ExportPkcs8PrivateKeyPem());
    }
}
