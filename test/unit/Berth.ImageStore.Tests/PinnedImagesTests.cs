using Berth.ImageStore.Images;
using Berth.ImageStore.References;

namespace Berth.ImageStore.Tests;

public sealed class PinnedImagesTests
{
    private static ImageRecord Image(params string[] names) => new()
    {
        Id = "sha256:" + new string('a', 64),
        ManifestDigest = "sha256:" + new string('b', 64),
        ManifestMediaType = "application/vnd.oci.image.manifest.v1+json",
        RepoTags = [.. names.Where(n => !n.Contains('@', StringComparison.Ordinal))],
        RepoDigests = [.. names.Where(n => n.Contains('@', StringComparison.Ordinal))],
    };

    [Theory]
    [InlineData("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", true)]
    [InlineData("pause:3.10", "docker.io/library/pause:3.10", true)]
    [InlineData("busybox", "docker.io/library/busybox:latest", true)]
    [InlineData("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.9", false)]
    [InlineData("registry.k8s.io/pause*", "registry.k8s.io/pause:3.9", true)]
    [InlineData("registry.k8s.io/pause*", "registry.k8s.io/etcd:3.5", false)]
    [InlineData("registry.k8s.io/pause@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "registry.k8s.io/pause@sha256:0000000000000000000000000000000000000000000000000000000000000000", true)]
    public void An_entry_covers_the_images_it_names(string entry, string name, bool covered) =>
        Assert.Equal(covered, new PinnedImages([entry]).Covers(Image(name)));

    [Fact]
    public void Any_name_of_the_image_counts_and_no_entries_pin_nothing()
    {
        var image = Image("example.com/app:1", "registry.k8s.io/pause:3.10");
        Assert.True(new PinnedImages(["registry.k8s.io/pause:3.10"]).Covers(image));
        Assert.False(new PinnedImages([]).Covers(image));
    }

    [Theory]
    [InlineData("Not A Name")]
    [InlineData("*")]
    public void An_entry_that_is_no_name_is_refused_naming_it(string entry) =>
        Assert.Contains($"'{entry}'", Assert.Throws<ArgumentException>(() => new PinnedImages([entry])).Message, StringComparison.Ordinal);
}
