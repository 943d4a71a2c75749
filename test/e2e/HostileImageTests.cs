using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>Images that lie or attack: refused with FailedPrecondition, nothing committed, nothing escaped.</summary>
public sealed class HostileImageTests
{
    private static async Task<RpcException> PullFailsAsync(ImageTestBed bed, TestImage image)
    {
        await bed.Pusher.PushAsync("berth/hostile", image, "1");
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/hostile:1") } }));
        await AssertNothingCommittedAsync(bed);
        return error;
    }

    private static async Task AssertNothingCommittedAsync(ImageTestBed bed)
    {
        Assert.Empty((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        var root = bed.Daemon.RootPath;
        Assert.Equal(["ingest"], Directory.EnumerateDirectories(Path.Combine(root, "snapshots")).Select(Path.GetFileName));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "snapshots", "ingest")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "content", "ingest")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(root, "images")));
    }

    private static TestImage OneLayer(byte[] tar) => new TestImageBuilder().Layer(tar).Build();

    [Fact]
    public async Task A_layer_escaping_with_dot_dot_is_refused()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var target = $"/tmp/berth-escape-{Guid.NewGuid():N}";
        var tar = TestLayers.Tar(w => TestLayers.File(w, "../../../../../../../../../.." + target, "pwned"u8.ToArray(), 0x1A4));

        var error = await PullFailsAsync(bed, OneLayer(tar));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("escapes the layer root", error.Status.Detail, StringComparison.Ordinal);
        Assert.False(File.Exists(target));
    }

    [Fact]
    public async Task An_absolute_entry_is_refused()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var target = $"/tmp/berth-escape-{Guid.NewGuid():N}";
        var error = await PullFailsAsync(bed, OneLayer(TestLayers.Tar(w => TestLayers.File(w, target, "pwned"u8.ToArray(), 0x1A4))));
        Assert.Contains("is an absolute path", error.Status.Detail, StringComparison.Ordinal);
        Assert.False(File.Exists(target));
    }

    [Fact]
    public async Task Writing_through_a_planted_symlink_is_refused()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var outside = Directory.CreateTempSubdirectory("berth-outside-").FullName;
        try
        {
            var tar = TestLayers.Tar(w =>
            {
                TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, "planted", outside);
                TestLayers.File(w, "planted/pwned", "pwned"u8.ToArray(), 0x1A4);
            });
            var error = await PullFailsAsync(bed, OneLayer(tar));
            Assert.Contains("walks through the symlink 'planted'", error.Status.Detail, StringComparison.Ordinal);
            Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task Links_pointing_outside_are_refused()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var symlink = await PullFailsAsync(bed, OneLayer(TestLayers.Tar(w =>
            TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, "etc/shadow", "../../../../etc/shadow"))));
        Assert.Contains("points outside the layer root", symlink.Status.Detail, StringComparison.Ordinal);

        await using var bed2 = await ImageTestBed.StartAsync();
        var hardlink = await PullFailsAsync(bed2, OneLayer(TestLayers.Tar(w =>
            TestLayers.Link(w, System.Formats.Tar.TarEntryType.HardLink, "passwd", "../../../../../../etc/passwd"))));
        Assert.Contains("escapes the layer root", hardlink.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Device_nodes_are_refused()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var tar = TestLayers.Tar(w => w.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.BlockDevice, "dev/sda")
        {
            DeviceMajor = 8, DeviceMinor = 0, Mode = (UnixFileMode)0x1B0,
        }));
        var error = await PullFailsAsync(bed, OneLayer(tar));
        Assert.Contains("device node", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_diff_id_that_does_not_match_the_layer_is_refused()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = new TestImageBuilder()
            .Layer(TestLayers.OneFile("a", "a"))
            .WithDiffIds(ids => [.. ids.Select(_ => "sha256:" + new string('0', 64))])
            .Build();
        var error = await PullFailsAsync(bed, image);
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("the config says sha256:0000", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_layer_larger_than_declared_is_refused()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = new TestImageBuilder().Layer(TestLayers.OneFile("a", new string('x', 10_000))).WithLayerSizes(l => l.Content.Length - 10).Build();
        var error = await PullFailsAsync(bed, image);
        Assert.Contains("larger than its declared size", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_layer_shorter_than_declared_is_refused()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = new TestImageBuilder().Layer(TestLayers.OneFile("a", "short")).WithLayerSizes(l => l.Content.Length + 100).Build();
        var error = await PullFailsAsync(bed, image);
        Assert.Contains("is truncated", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_corrupt_gzip_stream_is_refused()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var good = new TestImageBuilder().Layer(TestLayers.OneFile("a", new string('y', 5000))).Build();
        // Same size and media type, but the bytes are garbage: the registry stores what it is given.
        var garbage = new byte[good.Layers[0].Content.Length];
        new Random(7).NextBytes(garbage);
        var layer = new TestBlob(garbage, good.Layers[0].MediaType);
        var image = good with { Layers = [layer], Manifest = System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(good.Manifest).Replace(good.Layers[0].Digest, layer.Digest, StringComparison.Ordinal)) };

        var error = await PullFailsAsync(bed, image);
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }
}
