using System.Text;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>Credentials from the CRI AuthConfig against registries that demand them, and TLS trust.</summary>
public sealed class RegistryAuthTests
{
    private static readonly TestImage Image = new TestImageBuilder().Layer(TestLayers.OneFile("hello", "auth")).Build();

    private static async Task<ImageTestBed> StartWithImageAsync(RegistryMode mode, Func<RegistryServer, string>? extraConfig = null)
    {
        var bed = await ImageTestBed.StartAsync(mode, extraConfig);
        await bed.Pusher.PushAsync("berth/private", Image, "1");
        return bed;
    }

    private static PullImageRequest Pull(ImageTestBed bed, AuthConfig? auth) =>
        new() { Image = new ImageSpec { Image = bed.Ref("berth/private:1") }, Auth = auth };

    [Theory]
    [InlineData(RegistryMode.Basic)]
    [InlineData(RegistryMode.Token)]
    public async Task Username_and_password_are_accepted(RegistryMode mode)
    {
        await using var bed = await StartWithImageAsync(mode);
        var pulled = await bed.Daemon.Images.PullImageAsync(Pull(bed, new AuthConfig { Username = RegistryServer.Username, Password = RegistryServer.Password }));
        Assert.Equal(Image.Id, pulled.ImageRef);
        // berthd logs at debug level here: still no credential in any line.
        Assert.DoesNotContain(RegistryServer.Password, bed.Daemon.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(RegistryMode.Basic)]
    [InlineData(RegistryMode.Token)]
    public async Task The_auth_field_carries_base64_credentials(RegistryMode mode)
    {
        await using var bed = await StartWithImageAsync(mode);
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{RegistryServer.Username}:{RegistryServer.Password}"));
        var pulled = await bed.Daemon.Images.PullImageAsync(Pull(bed, new AuthConfig { Auth = auth }));
        Assert.Equal(Image.Id, pulled.ImageRef);
        Assert.DoesNotContain(auth, bed.Daemon.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(RegistryServer.Password, bed.Daemon.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(RegistryMode.Basic, "wrong")]
    [InlineData(RegistryMode.Token, "wrong")]
    [InlineData(RegistryMode.Basic, null)]
    [InlineData(RegistryMode.Token, null)]
    public async Task Wrong_or_missing_credentials_are_Unauthenticated(RegistryMode mode, string? password)
    {
        await using var bed = await StartWithImageAsync(mode);
        var auth = password is null ? null : new AuthConfig { Username = RegistryServer.Username, Password = password };

        var error = await Assert.ThrowsAsync<RpcException>(async () => await bed.Daemon.Images.PullImageAsync(Pull(bed, auth)));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains(password is null ? "requires credentials" : "rejected the credentials", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
    }

    [Fact]
    public async Task An_identity_token_is_exchanged_at_the_token_server()
    {
        await using var bed = await StartWithImageAsync(RegistryMode.Token);
        var pulled = await bed.Daemon.Images.PullImageAsync(Pull(bed, new AuthConfig { IdentityToken = TokenServer.RefreshToken }));
        Assert.Equal(Image.Id, pulled.ImageRef);
    }

    [Fact]
    public async Task A_registry_token_is_sent_as_it_is()
    {
        await using var bed = await StartWithImageAsync(RegistryMode.Token);
        var issuedBefore = bed.Registry.Tokens.Issued;
        var token = bed.Registry.Tokens.IssueToken("repository:berth/private:pull");

        var pulled = await bed.Daemon.Images.PullImageAsync(Pull(bed, new AuthConfig { RegistryToken = token }));

        Assert.Equal(Image.Id, pulled.ImageRef);
        Assert.Equal(issuedBefore, bed.Registry.Tokens.Issued); // berthd never went to the token server
    }

    [Fact]
    public async Task Tokens_are_cached_per_scope()
    {
        await using var bed = await StartWithImageAsync(RegistryMode.Token);
        var auth = new AuthConfig { Username = RegistryServer.Username, Password = RegistryServer.Password };
        var issuedBefore = bed.Registry.Tokens.Issued;

        await bed.Daemon.Images.PullImageAsync(Pull(bed, auth));

        // Manifest, config and layer of one repository: one token.
        Assert.Equal(issuedBefore + 1, bed.Registry.Tokens.Issued);
    }

    [Fact]
    public async Task Tls_with_the_configured_CA()
    {
        await using var bed = await StartWithImageAsync(RegistryMode.Tls, registry => $"""

            [images.registries."{registry.Host}"]
            ca_file = "{registry.CaFile}"
            """);
        var pulled = await bed.Daemon.Images.PullImageAsync(Pull(bed, null));
        Assert.Equal(Image.Id, pulled.ImageRef);
    }

    [Fact]
    public async Task Tls_with_skip_verify()
    {
        await using var bed = await StartWithImageAsync(RegistryMode.Tls, registry => $"""

            [images.registries."{registry.Host}"]
            skip_verify = true
            """);
        var pulled = await bed.Daemon.Images.PullImageAsync(Pull(bed, null));
        Assert.Equal(Image.Id, pulled.ImageRef);
    }

    [Fact]
    public async Task Tls_with_an_untrusted_certificate_fails()
    {
        // https because the host has TLS settings, but the CA file is not the registry's.
        await using var bed = await StartWithImageAsync(RegistryMode.Tls, registry => $"""

            [images.registries."{registry.Host}"]
            ca_file = "/etc/ssl/certs/ca-certificates.crt"
            """);
        var error = await Assert.ThrowsAsync<RpcException>(async () => await bed.Daemon.Images.PullImageAsync(Pull(bed, null)));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("SSL", error.Status.Detail, StringComparison.OrdinalIgnoreCase);
    }
}
