using Berth.ImageStore.References;

namespace Berth.ImageStore.Tests;

public sealed class ImageReferenceTests
{
    private const string Sha = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("busybox", "docker.io", "library/busybox", "latest", null, "docker.io/library/busybox:latest")]
    [InlineData("busybox:1.36", "docker.io", "library/busybox", "1.36", null, "docker.io/library/busybox:1.36")]
    [InlineData("library/busybox", "docker.io", "library/busybox", "latest", null, "docker.io/library/busybox:latest")]
    [InlineData("docker.io/busybox", "docker.io", "library/busybox", "latest", null, "docker.io/library/busybox:latest")]
    [InlineData("index.docker.io/library/busybox:x", "docker.io", "library/busybox", "x", null, "docker.io/library/busybox:x")]
    [InlineData("myorg/app", "docker.io", "myorg/app", "latest", null, "docker.io/myorg/app:latest")]
    [InlineData("registry.k8s.io/pause:3.10", "registry.k8s.io", "pause", "3.10", null, "registry.k8s.io/pause:3.10")]
    [InlineData("127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000", "a/b/c", "v1", null, "127.0.0.1:5000/a/b/c:v1")]
    [InlineData("localhost/app", "localhost", "app", "latest", null, "localhost/app:latest")]
    [InlineData("localhost:5000/app", "localhost:5000", "app", "latest", null, "localhost:5000/app:latest")]
    [InlineData("quay.io/a_b/c__d/e-f.g:T_1.2-x", "quay.io", "a_b/c__d/e-f.g", "T_1.2-x", null, "quay.io/a_b/c__d/e-f.g:T_1.2-x")]
    [InlineData("busybox@" + Sha, "docker.io", "library/busybox", null, Sha, "docker.io/library/busybox@" + Sha)]
    [InlineData("gcr.io/x/y:1@" + Sha, "gcr.io", "x/y", "1", Sha, "gcr.io/x/y:1@" + Sha)]
    public void References_normalize_as_kubelet_expects(string text, string registry, string repository, string? tag, string? digest, string normalized)
    {
        var reference = ImageReference.Parse(text);

        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
        Assert.Equal(digest, reference.Digest?.ToString());
        Assert.Equal(normalized, reference.ToString());
    }

    [Fact]
    public void Repo_tag_and_repo_digest_forms()
    {
        var reference = ImageReference.Parse("busybox:1@" + Sha);
        Assert.Equal("docker.io/library/busybox:1", reference.RepoTag);
        Assert.Equal("docker.io/library/busybox@" + Sha, reference.RepoDigest);
        Assert.Equal("docker.io/library/busybox", reference.Name);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("Busybox", "not a valid repository name")]
    [InlineData("docker.io/Library/busybox", "not a valid repository name")]
    [InlineData("busybox:", "not a valid tag")]
    [InlineData("busybox:-x", "not a valid tag")]
    [InlineData("busybox:a/b", "not a valid registry host")]
    [InlineData("busybox@sha256:abc", "not a sha256 digest")]
    [InlineData("busybox@md5:0123", "not a sha256 digest")]
    [InlineData("a//b", "not a valid repository name")]
    [InlineData("a/b-", "not a valid repository name")]
    [InlineData("a..b", "not a valid repository name")]
    [InlineData("a___b", "not a valid repository name")]
    [InlineData("host:5000/", "not a valid repository name")]
    public void Malformed_references_are_refused_with_a_reason(string text, string reason)
    {
        Assert.False(ImageReference.TryParse(text, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }
}
