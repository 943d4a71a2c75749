using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Berth.ImageStore.Tests;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>Images that lie or attack: refused with FailedPrecondition, nothing committed, nothing escaped.</summary>
public sealed class HostileImageTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static async Task<RpcException> PullFailsAsync(ImageTestBed bed, TestImage image)
    {
        await bed.Pusher.PushAsync("berth/hostile", image, "1");
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/hostile:1") } }));
        await AssertNothingCommittedAsync(bed);
        return error;
    }

    /// <summary>A refused pull leaves nothing: no image, no snapshot, no blob (manifest and config included), no ingest or trash.</summary>
    internal static async Task AssertNothingCommittedAsync(ImageTestBed bed)
    {
        Assert.Empty((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        var root = bed.Daemon.RootPath;
        Assert.Equal(["ingest", "trash"], Directory.EnumerateDirectories(Path.Combine(root, "snapshots")).Select(Path.GetFileName).Order());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "snapshots", "ingest")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "snapshots", "trash")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "content", "ingest")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "content", "blobs", "sha256")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(root, "images")));
    }

    /// <summary>Every refusal names the layer by digest and the entry it refused.</summary>
    private static async Task<RpcException> RefusedAsync(ImageTestBed bed, byte[] tar, string entryDetail)
    {
        var image = OneLayer(tar);
        var error = await PullFailsAsync(bed, image);
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains($"layer {image.Layers[0].Digest}: ", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains(entryDetail, error.Status.Detail, StringComparison.Ordinal);
        return error;
    }

    [Fact]
    public async Task A_whiteout_naming_no_file_is_refused_naming_layer_and_entry()
    {
        await using var bed = await ImageTestBed.StartAsync();
        await RefusedAsync(bed, TestLayers.Tar(w =>
        {
            TestLayers.Dir(w, "a/");
            TestLayers.File(w, "a/.wh.", [], 0);
        }), "whiteout 'a/.wh.' names no file");
    }

    [Fact]
    public async Task A_name_longer_than_255_bytes_is_refused_naming_layer_and_entry()
    {
        await using var bed = await ImageTestBed.StartAsync();
        await RefusedAsync(bed, TestLayers.Tar(w => TestLayers.File(w, "d/" + new string('n', 300), "x"u8.ToArray(), 0x1A4)),
            "has a name of 300 bytes; Linux allows 255");
    }

    [Fact]
    public async Task A_walk_through_a_symlink_names_the_entry_and_the_link()
    {
        await using var bed = await ImageTestBed.StartAsync();
        await RefusedAsync(bed, TestLayers.Tar(w =>
        {
            TestLayers.Dir(w, "usr/");
            TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, "usr/lib", "/tmp");
            TestLayers.File(w, "usr/lib/x/evil", "x"u8.ToArray(), 0x1A4);
        }), "'usr/lib/x/evil' walks through the symlink 'usr/lib'");
    }

    [Fact]
    public async Task A_second_layer_refused_takes_back_the_first_layer_and_every_blob()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = new TestImageBuilder()
            .Layer(TestLayers.OneFile("good", "fine"))
            .Layer(TestLayers.Tar(w => TestLayers.File(w, "/abs", "x"u8.ToArray(), 0x1A4)))
            .Build();
        var error = await PullFailsAsync(bed, image);
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }

    [Fact]
    public async Task A_refused_layer_whose_partial_tree_is_deeper_than_path_max_is_cleaned_up()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var deep = string.Join('/', Enumerable.Repeat(new string('d', 200), 30));
        await RefusedAsync(bed, TestLayers.Tar(w =>
        {
            TestLayers.File(w, deep + "/leaf", "deep"u8.ToArray(), 0x1A4);
            TestLayers.File(w, "/etc/evil", "x"u8.ToArray(), 0x1A4);
        }), "'/etc/evil' is an absolute path");
    }

    [Fact]
    public async Task Paths_longer_than_path_max_pull_measure_remove_and_restart()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        try
        {
            var deep = string.Join('/', Enumerable.Repeat(new string('d', 200), 30)); // a 6 KB path
            var image = OneLayer(TestLayers.Tar(w =>
            {
                TestLayers.File(w, deep + "/leaf", "deep"u8.ToArray(), 0x1A4);
                TestLayers.File(w, "top", "top"u8.ToArray(), 0x1A4);
            }));
            await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
            using var pusher = new RegistryPusher(registry);
            await pusher.PushAsync("berth/deep", image, "1");
            var reference = $"{registry.Host}/berth/deep:1";

            await using (var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory }))
            {
                await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = reference } });
                var usage = Assert.Single((await daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest())).ImageFilesystems);
                Assert.True(usage.InodesUsed.Value > 30, $"{usage.InodesUsed.Value} inodes: the deep directories were not all counted");
                await daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = reference } });
                await AssertStoreEmptyAsync(daemon);

                // Pulled again and left in the store, for a restart.
                await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = reference } });
                daemon.Signal(Tmds.Linux.LibC.SIGKILL);
                await daemon.WaitForExitAsync(TimeSpan.FromSeconds(20));
            }
            await using (var restarted = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory }))
            {
                Assert.Single((await restarted.Images.ListImagesAsync(new ListImagesRequest())).Images);
                await restarted.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = reference } });
                await AssertStoreEmptyAsync(restarted);
            }
        }
        finally
        {
            Berth.Native.FileTree.Remove(directory);
        }
    }

    private static async Task AssertStoreEmptyAsync(BerthDaemon daemon)
    {
        Assert.Empty((await daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        Assert.Empty(Directory.EnumerateDirectories(Path.Combine(daemon.RootPath, "snapshots")).Select(Path.GetFileName).Except(["ingest", "trash"]));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(daemon.RootPath, "snapshots", "trash")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(daemon.RootPath, "content", "blobs", "sha256")));
    }

    [Fact]
    public async Task Absolute_symlinks_to_the_host_are_never_followed_when_the_store_is_measured()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = OneLayer(TestLayers.Tar(w =>
        {
            TestLayers.Dir(w, "var/");
            TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, "var/run", "/run");
            TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, "escape", "/");
            TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, "loop", ".");
        }));
        await bed.Pusher.PushAsync("berth/links", image, "1");
        var before = Assert.Single((await bed.Daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest())).ImageFilesystems);
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/links:1") } });
        var after = Assert.Single((await bed.Daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest())).ImageFilesystems);
        // A layer dir, its fs dir, var, three links, and the three blobs and a record: a few dozen at most, not the host's /run or /.
        var added = after.InodesUsed.Value - before.InodesUsed.Value;
        Assert.InRange(added, 8UL, 40UL);
    }

    [Fact]
    public async Task A_root_holding_deep_trees_and_unreadable_records_starts_and_serves()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        try
        {
            await using (var first = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory }))
            {
                first.Signal(Tmds.Linux.LibC.SIGKILL);
                await first.WaitForExitAsync(TimeSpan.FromSeconds(20));
            }
            var root = Path.Combine(directory, "root");
            // What a crash mid-unpack and mid-removal can leave, beyond PATH_MAX; and a record cut short.
            foreach (var leftover in new[] { "snapshots/ingest/interrupted", "snapshots/trash/removed" })
                DeepTree.Create(Directory.CreateDirectory(Path.Combine(root, leftover)).FullName, levels: 40, nameLength: 200, filesPerLevel: 1);
            await File.WriteAllTextAsync(Path.Combine(root, "images", new string('a', 64) + ".json"), "{\"id\":\"sha256:");
            await File.WriteAllTextAsync(Path.Combine(root, "images", "not-a-digest.json"), "{}");
            await File.WriteAllTextAsync(Path.Combine(root, "containers", "records", new string('c', 64) + ".json"), "{\"id\":");
            await File.WriteAllTextAsync(Path.Combine(root, "sandboxes", new string('5', 64) + ".json"), "\0\0\0");

            var started = System.Diagnostics.Stopwatch.StartNew();
            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
            var ready = started.Elapsed;
            output.WriteLine($"berthd served {ready.TotalMilliseconds:F0} ms after it was started on the root with leftovers");
            Assert.Empty((await daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
            Assert.Single((await daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest())).ImageFilesystems);
            Assert.Equal(2, Directory.EnumerateFiles(Path.Combine(root, "images", "quarantine")).Count());
            Assert.Contains("cannot be read; moved to", daemon.Output, StringComparison.Ordinal);
            Assert.Contains("a container record could not be read and was moved to", daemon.Output, StringComparison.Ordinal);
            Assert.Contains("a sandbox record could not be read and was moved to", daemon.Output, StringComparison.Ordinal);
            Assert.Empty((await daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers);
            Assert.Empty((await daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items);
            // The leftovers go in the background.
            for (var i = 0; i < 300 && Directory.EnumerateFileSystemEntries(Path.Combine(root, "snapshots", "trash")).Any(); i++) await Task.Delay(100);
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "snapshots", "trash")));
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(root, "snapshots", "ingest")));
            Assert.True(ready < TimeSpan.FromSeconds(10), $"berthd took {ready} to serve");
        }
        finally
        {
            Berth.Native.FileTree.Remove(directory);
        }
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
