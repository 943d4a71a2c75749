using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>The streaming server with TLS: the URLs are https and the session runs inside TLS.</summary>
public sealed class StreamingTlsTests
{
    [Fact]
    public async Task Port_forward_works_over_an_https_url()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        var directory = Directory.CreateTempSubdirectory("be-tls-").FullName;
        try
        {
            var certFile = Path.Combine(directory, "cert.pem");
            var keyFile = Path.Combine(directory, "key.pem");
            await File.WriteAllTextAsync(certFile, certificate.ExportCertificatePem());
            await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());
            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions
            {
                ExtraConfig = $"[streaming]\ntls_cert_file = \"{certFile}\"\ntls_key_file = \"{keyFile}\"\n",
            });
            var pod = new PodSandboxConfig
            {
                Metadata = new PodSandboxMetadata { Name = "tls", Namespace = "e2e", Uid = Guid.NewGuid().ToString() },
                Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } } },
            };
            var podId = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;

            // A host-network pod shares the node's loopback, where the test listens.
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var served = Task.Run(async () =>
            {
                using var peer = await listener.AcceptTcpClientAsync();
                await peer.GetStream().WriteAsync("over tls\n"u8.ToArray());
            });

            var forward = new Cri.V1.PortForwardRequest { PodSandboxId = podId };
            forward.Port.Add(port);
            var url = (await daemon.Runtime.PortForwardAsync(forward)).Url;
            Assert.StartsWith("https://127.0.0.1:", url);
            var (client, status, body) = await SpdyTestClient.ConnectAsync(url, certificate, "portforward.k8s.io");
            Assert.True(client is not null, $"{status}: {body}");
            await using (client)
            {
                var error = await client.OpenAsync(("streamType", "error"), ("port", $"{port}"), ("requestID", "0"));
                await error.CloseAsync();
                var data = await client.OpenAsync(("streamType", "data"), ("port", $"{port}"), ("requestID", "0"));
                await data.CloseAsync();
                Assert.Equal("over tls\n", Encoding.UTF8.GetString(await data.ReadToEndAsync()));
            }
            await served;
            await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
