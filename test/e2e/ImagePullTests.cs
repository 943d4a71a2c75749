using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>PullImage, ListImages, ImageStatus, RemoveImage and ImageFsInfo against a real registry.</summary>
public sealed class ImagePullTests
{
    private static TestImage BusyboxImage(Compression overlay = Compression.Zstd, string? user = "1000") =>
        new TestImageBuilder()
            .Layer(TestLayers.Base(), Compression.Gzip)
            .Layer(TestLayers.Overlay(), overlay)
            .Layer(TestLayers.OneFile("etc/issue", "berth test image\n"), Compression.None)
            .User(user ?? "")
            .Build();

    [Fact]
    public async Task Pull_by_tag_then_list_and_inspect()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = BusyboxImage();
        await bed.Pusher.PushAsync("berth/busybox", image, "1.0", "latest");

        var pulled = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:1.0") } });

        Assert.Equal(image.Id, pulled.ImageRef);
        var listed = Assert.Single((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        Assert.Equal(image.Id, listed.Id);
        Assert.Equal([bed.Ref("berth/busybox:1.0")], listed.RepoTags);
        Assert.Equal([$"{bed.Ref("berth/busybox")}@{image.ManifestDigest}"], listed.RepoDigests);
        Assert.Equal((ulong)(image.Config.Content.Length + image.Layers.Sum(l => l.Content.Length)), listed.Size);
        Assert.Equal(1000, listed.Uid.Value);

        // Every name kubelet or crictl may use finds it.
        foreach (var name in new[] { image.Id, image.Id[7..], image.Id[7..19], bed.Ref("berth/busybox:1.0"), $"{bed.Ref("berth/busybox")}@{image.ManifestDigest}" })
        {
            var status = await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = name } });
            Assert.True(status.Image?.Id == image.Id, $"ImageStatus({name}) did not find the image");
        }
        var filtered = await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest { Filter = new ImageFilter { Image = new ImageSpec { Image = bed.Ref("berth/busybox:1.0") } } });
        Assert.Single(filtered.Images);
        var none = await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest { Filter = new ImageFilter { Image = new ImageSpec { Image = bed.Ref("berth/other:1") } } });
        Assert.Empty(none.Images);
    }

    [Fact]
    public async Task The_unpacked_snapshots_keep_every_attribute()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = BusyboxImage();
        await bed.Pusher.PushAsync("berth/busybox", image, "1.0");
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:1.0") } });

        var status = await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image.Id }, Verbose = true });
        using var info = JsonDocument.Parse(status.Info["info"]);
        Assert.Equal("amd64", info.RootElement.GetProperty("imageSpec").GetProperty("architecture").GetString());
        var lowerDirs = info.RootElement.GetProperty("lowerDirs").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal(3, lowerDirs.Count);
        // lowerdir order: the top layer first.
        var (top, overlay, baseLayer) = (lowerDirs[0], lowerDirs[1], lowerDirs[2]);

        var busybox = Path.Combine(baseLayer, "bin/busybox");
        Assert.Equal(await File.ReadAllBytesAsync(TestLayers.BusyboxPath), await File.ReadAllBytesAsync(busybox));
        Assert.Equal(0x81EDu, FileStat.Of(busybox).Mode);
        Assert.Equal(FileStat.Of(busybox).Inode, FileStat.Of(Path.Combine(baseLayer, "bin/sh")).Inode);
        Assert.Equal("busybox", new FileInfo(Path.Combine(baseLayer, "bin/ls")).LinkTarget);
        Assert.Equal("/bin/busybox", new FileInfo(Path.Combine(baseLayer, "bin/cat")).LinkTarget);
        Assert.Equal(0x89EDu, FileStat.Of(Path.Combine(baseLayer, "usr/bin/setuid-file")).Mode);
        Assert.Equal(0x43FFu, FileStat.Of(Path.Combine(baseLayer, "tmp")).Mode);
        var home = FileStat.Of(Path.Combine(baseLayer, "home/berth/.profile"));
        Assert.Equal((1000u, 1000u), (home.Uid, home.Gid));
        Assert.Equal("layer-xattr"u8.ToArray(), FileStat.Xattr(Path.Combine(baseLayer, "etc/xattr-file"), "user.berth"));
        Assert.Equal(TestImageBuilder.Mtime, File.GetLastWriteTimeUtc(Path.Combine(baseLayer, "etc/passwd")));

        var whiteout = FileStat.Of(Path.Combine(overlay, "etc/group"));
        Assert.Equal((0x2000u, 0ul), (whiteout.Mode & 0xF000, whiteout.Rdev));
        Assert.Equal("y"u8.ToArray(), FileStat.Xattr(Path.Combine(overlay, "tmp"), "trusted.overlay.opaque"));
        Assert.False(File.Exists(Path.Combine(overlay, "tmp/.wh..wh..opq")));
        Assert.Equal("welcome to berth\n", await File.ReadAllTextAsync(Path.Combine(overlay, "etc/motd")));
        Assert.Equal("berth test image\n", await File.ReadAllTextAsync(Path.Combine(top, "etc/issue")));
    }

    [Fact]
    public async Task Pull_by_digest_and_by_tag_at_digest()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = BusyboxImage();
        await bed.Pusher.PushAsync("berth/busybox", image, "1.0");

        var byDigest = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{bed.Ref("berth/busybox")}@{image.ManifestDigest}" } });
        Assert.Equal(image.Id, byDigest.ImageRef);
        var listed = Assert.Single((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        Assert.Empty(listed.RepoTags);
        Assert.Equal([$"{bed.Ref("berth/busybox")}@{image.ManifestDigest}"], listed.RepoDigests);

        var both = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{bed.Ref("berth/busybox:1.0")}@{image.ManifestDigest}" } });
        Assert.Equal(image.Id, both.ImageRef);
    }

    [Fact]
    public async Task Docker_schema2_images_pull()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = new TestImageBuilder().Layer(TestLayers.Base()).Layer(TestLayers.Overlay()).DockerSchema2().Build();
        await bed.Pusher.PushAsync("berth/docker", image, "v2");

        var pulled = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/docker:v2") } });

        Assert.Equal(image.Id, pulled.ImageRef);
        var status = await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = pulled.ImageRef }, Verbose = true });
        Assert.Contains("application/vnd.docker.distribution.manifest.v2+json", status.Info["info"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_multi_platform_index_resolves_to_linux_amd64()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var amd64 = new TestImageBuilder().Layer(TestLayers.Base()).Build();
        var arm64 = new TestImageBuilder().Layer(TestLayers.OneFile("arch", "arm64")).Architecture("arm64").Build();
        await bed.Pusher.PushAsync("berth/multi", arm64);
        await bed.Pusher.PushAsync("berth/multi", amd64);
        var index = TestImageBuilder.Index([(arm64, "arm64"), (amd64, "amd64")]);
        await bed.Pusher.PushManifestAsync("berth/multi", "1", index, "application/vnd.oci.image.index.v1+json");

        var pulled = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/multi:1") } });

        Assert.Equal(amd64.Id, pulled.ImageRef);
        var image = Assert.Single((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        // The repo digest is the index's: the digest the tag names.
        Assert.Equal([$"{bed.Ref("berth/multi")}@{TestBlob.DigestOf(index)}"], image.RepoDigests);
    }

    [Fact]
    public async Task A_mirror_serves_docker_hub_names()
    {
        await using var bed = await ImageTestBed.StartAsync(extraConfig: registry => $"""

            [images.registries."docker.io"]
            mirrors = ["http://{registry.Host}"]
            """);
        var image = BusyboxImage();
        await bed.Pusher.PushAsync("library/busybox", image, "1.36");

        var pulled = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = "busybox:1.36" } });

        Assert.Equal(image.Id, pulled.ImageRef);
        var listed = Assert.Single((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        Assert.Equal(["docker.io/library/busybox:1.36"], listed.RepoTags);
        var status = await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = "busybox:1.36" } });
        Assert.Equal(image.Id, status.Image.Id);
    }

    [Fact]
    public async Task Containerd_hosts_toml_files_give_mirrors_and_a_default_host()
    {
        var hosts = Directory.CreateTempSubdirectory("hosts-").FullName;
        try
        {
            await using var bed = await ImageTestBed.StartAsync(extraConfig: registry =>
            {
                // docker.io: the server is a closed local port, so only the mirror can answer; a push-only host is skipped.
                Directory.CreateDirectory(Path.Combine(hosts, "docker.io"));
                File.WriteAllText(Path.Combine(hosts, "docker.io", "hosts.toml"), $$"""
                    server = "http://127.0.0.1:9"

                    [host."http://127.0.0.1:9/push"]
                      capabilities = ["push"]

                    [host."http://{{registry.Host}}"]
                      capabilities = ["pull", "resolve"]
                    """);
                Directory.CreateDirectory(Path.Combine(hosts, "_default"));
                File.WriteAllText(Path.Combine(hosts, "_default", "hosts.toml"), $"server = \"http://{registry.Host}\"\n");
                return $"\n[images]\nconfig_path = \"{hosts}\"\n";
            });
            var image = BusyboxImage();
            await bed.Pusher.PushAsync("library/busybox", image, "1.36");
            await bed.Pusher.PushAsync("team/app", image, "1");

            var viaMirror = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = "busybox:1.36" } });
            Assert.Equal(image.Id, viaMirror.ImageRef);
            var viaDefault = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = "quay.example/team/app:1" } });
            Assert.Equal(image.Id, viaDefault.ImageRef);
            var listed = Assert.Single((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
            Assert.Equal(["docker.io/library/busybox:1.36", "quay.example/team/app:1"], listed.RepoTags.Order());
        }
        finally
        {
            Directory.Delete(hosts, recursive: true);
        }
    }

    [Fact]
    public async Task A_server_override_replaces_the_registry_entirely()
    {
        await using var bed = await ImageTestBed.StartAsync(extraConfig: registry => $"""

            [images.registries."registry.k8s.io"]
            server = "http://{registry.Host}"
            """);
        var image = BusyboxImage();
        await bed.Pusher.PushAsync("pause", image, "3.10");

        var pulled = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = "registry.k8s.io/pause:3.10" } });
        Assert.Equal(image.Id, pulled.ImageRef);

        // A missing image is NotFound from the server, with no fallback to the real registry.
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = "registry.k8s.io/pause:9.9" } }));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.DoesNotContain("https://registry.k8s.io", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_pulls_of_one_image_download_each_layer_once()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = BusyboxImage();
        await bed.Pusher.PushAsync("berth/busybox", image, "1.0", "also");

        var pulls = Enumerable.Range(0, 8).Select(i => bed.Daemon.Images.PullImageAsync(new PullImageRequest
        {
            Image = new ImageSpec { Image = bed.Ref(i % 2 == 0 ? "berth/busybox:1.0" : "berth/busybox:also") },
        }).ResponseAsync);
        var results = await Task.WhenAll(pulls);

        Assert.All(results, r => Assert.Equal(image.Id, r.ImageRef));
        foreach (var layer in image.Layers)
        {
            var fetches = CountBlobGets(bed.Registry.Log, layer.Digest);
            Assert.True(fetches == 1, $"layer {layer.Digest} was fetched {fetches} times");
        }
        var listed = Assert.Single((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        Assert.Equal([bed.Ref("berth/busybox:1.0"), bed.Ref("berth/busybox:also")], listed.RepoTags.Order());
    }

    [Fact]
    public async Task File_capabilities_in_a_layer_are_kept_byte_for_byte()
    {
        // What `setcap cap_net_raw+ep` leaves in a PAX header: a binary vfs_cap_data value.
        byte[] capability = [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        var capabilities = Berth.ImageStore.Tests.RawTar.Files(("bin/ping", "ping"u8.ToArray(), [("SCHILY.xattr.security.capability", capability)]));
        await using var bed = await ImageTestBed.StartAsync();
        var image = new TestImageBuilder().Layer(TestLayers.Base()).Layer(capabilities).Build();
        await bed.Pusher.PushAsync("berth/ping", image, "1");
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/ping:1") } });

        var status = await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image.Id }, Verbose = true });
        using var info = JsonDocument.Parse(status.Info["info"]);
        var top = info.RootElement.GetProperty("lowerDirs")[0].GetString()!;
        Assert.Equal(capability, FileStat.Xattr(Path.Combine(top, "bin/ping"), "security.capability"));
    }

    [Fact]
    public async Task RemoveImage_by_one_tag_removes_the_image_with_all_its_tags_and_content()
    {
        // critest v1.36: "removing image by one tag should remove all tags", and containerd does so.
        await using var bed = await ImageTestBed.StartAsync();
        var image = BusyboxImage();
        await bed.Pusher.PushAsync("berth/busybox", image, "a", "b");
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:a") } });
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:b") } });
        Assert.Equal(2, Assert.Single((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images).RepoTags.Count);

        await bed.Daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:a") } });
        Assert.Empty((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        Assert.Null((await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:b") } })).Image);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(bed.Daemon.RootPath, "content", "blobs", "sha256")));
        Assert.Equal(["ingest", "trash"], Directory.EnumerateDirectories(Path.Combine(bed.Daemon.RootPath, "snapshots")).Select(Path.GetFileName).Order());

        // Removing what is not there is not an error.
        await bed.Daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:b") } });
        await bed.Daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = image.Id } });
    }

    [Fact]
    public async Task RemoveImage_from_one_registry_removes_its_tags_from_the_others_and_concurrent_removals_succeed()
    {
        // critest v1.36: "removing image from one registry should remove all tags from other registries".
        await using var bed = await ImageTestBed.StartAsync();
        await using var other = await RegistryServer.StartAsync(RegistryMode.Plain);
        var image = BusyboxImage();
        await bed.Pusher.PushAsync("berth/busybox", image, "1");
        using (var otherPusher = new RegistryPusher(other)) await otherPusher.PushAsync("mirror/busybox", image, "1", "2");
        foreach (var name in new[] { bed.Ref("berth/busybox:1"), $"{other.Host}/mirror/busybox:1", $"{other.Host}/mirror/busybox:2" })
            await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = name } });
        var listed = Assert.Single((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        Assert.Equal(3, listed.RepoTags.Count);
        Assert.Equal(2, listed.RepoDigests.Count);

        await Task.WhenAll(Enumerable.Range(0, 2).Select(async _ =>
            await bed.Daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = $"{other.Host}/mirror/busybox:2" } })));
        Assert.Empty((await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(bed.Daemon.RootPath, "content", "blobs", "sha256")));
    }

    [Fact]
    public async Task Every_name_and_layer_survives_concurrent_pulls_removals_and_ImageFsInfo()
    {
        // Issue 35: one image pulled under two registry names showed one name once, after critest had filled the store.
        await using var bed = await ImageTestBed.StartAsync(extraConfig: registry => $"""

            [images.registries."docker.io"]
            mirrors = ["http://{registry.Host}"]
            """);
        var image = BusyboxImage();
        await bed.Pusher.PushAsync("library/busybox", image, "1.36");
        await bed.Pusher.PushAsync("berth/busybox", image, "1.36");
        string[] names = ["docker.io/library/busybox:1.36", bed.Ref("library/busybox:1.36"), bed.Ref("berth/busybox:1.36")];
        // Others share the busybox layers, so removing them collects garbage around the pulls.
        var others = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var other = new TestImageBuilder().Layer(TestLayers.Base(), Compression.Gzip).Layer(TestLayers.Overlay(), Compression.Zstd)
                .Layer(TestLayers.OneFile("etc/other", $"{i}\n"), Compression.None).Build();
            await bed.Pusher.PushAsync($"berth/other{i}", other, "1");
            others.Add(bed.Ref($"berth/other{i}:1"));
        }

        Task Pull(string name) => bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = name } }).ResponseAsync;
        Task Remove(string name) => bed.Daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = name } }).ResponseAsync;
        for (var round = 0; round < 12; round++)
        {
            // Gone first, so each pull of the round may be the one that brings the image or adds a name to it.
            await Remove(image.Id);
            await Task.WhenAll([
                .. names.Concat(names).Select(Pull),
                .. others.Select(async other => { await Pull(other); await Remove(other); }),
                .. Enumerable.Range(0, 4).Select(async _ =>
                {
                    await bed.Daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest());
                    await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest());
                }),
            ]);

            foreach (var name in names)
            {
                var status = await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = name }, Verbose = true });
                Assert.Equal(image.Id, status.Image?.Id);
                Assert.Equal(names.Order(), status.Image!.RepoTags.Order());
                // Every layer the image names is on disk: no removal collected one a pull counted on.
                foreach (var lower in JsonDocument.Parse(status.Info["info"]).RootElement.GetProperty("lowerDirs").EnumerateArray())
                    Assert.True(Directory.Exists(lower.GetString()), $"round {round}: {lower.GetString()} of {name} is gone");
            }
            Assert.Equal([image.Id], (await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images.Select(i => i.Id));
        }
    }

    [Fact]
    public async Task Images_configured_as_pinned_are_reported_pinned_under_any_of_their_names()
    {
        await using var bed = await ImageTestBed.StartAsync(extraConfig: r => $"[images]\npinned = [\"{r.Host}/berth/pause:3.10\"]\n");
        var pause = new TestImageBuilder().Layer(TestLayers.Base()).Build();
        await bed.Pusher.PushAsync("berth/pause", pause, "3.10", "other");
        await bed.Pusher.PushAsync("berth/busybox", BusyboxImage(), "1");
        foreach (var name in new[] { "berth/pause:other", "berth/busybox:1" })
            await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref(name) } });
        // Pulled under another tag first: pinned once the configured name is one of its names.
        Assert.False((await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = pause.Id } })).Image.Pinned);
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/pause:3.10") } });

        Assert.True((await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = bed.Ref("berth/pause:other") } })).Image.Pinned);
        var listed = (await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images.ToDictionary(i => i.Id, i => i.Pinned);
        Assert.True(listed[pause.Id]);
        Assert.Single(listed, i => !i.Value);
    }

    [Fact]
    public async Task RemoveImage_by_id_keeps_layers_other_images_share()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var small = new TestImageBuilder().Layer(TestLayers.Base()).Build();
        var big = BusyboxImage();
        await bed.Pusher.PushAsync("berth/small", small, "1");
        await bed.Pusher.PushAsync("berth/big", big, "1");
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/small:1") } });
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/big:1") } });

        await bed.Daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = big.Id } });

        var status = await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = small.Id }, Verbose = true });
        using var info = JsonDocument.Parse(status.Info["info"]);
        var lower = info.RootElement.GetProperty("lowerDirs")[0].GetString()!;
        Assert.True(File.Exists(Path.Combine(lower, "bin/busybox")), "the shared base layer was collected");
        Assert.Equal(3, Directory.EnumerateDirectories(Path.Combine(bed.Daemon.RootPath, "snapshots")).Count()); // base, ingest and trash
    }

    [Fact]
    public async Task ImageFsInfo_reports_the_store()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var empty = Assert.Single((await bed.Daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest())).ImageFilesystems);
        await bed.Pusher.PushAsync("berth/busybox", BusyboxImage(), "1");
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:1") } });

        var usage = Assert.Single((await bed.Daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest())).ImageFilesystems);

        Assert.Equal(bed.Daemon.RootPath, usage.FsId.Mountpoint);
        // Two copies of busybox at least: the compressed blob and the unpacked file.
        Assert.True(usage.UsedBytes.Value > empty.UsedBytes.Value + 2_000_000, $"{usage.UsedBytes.Value} bytes used");
        Assert.True(usage.InodesUsed.Value > empty.InodesUsed.Value + 20, $"{usage.InodesUsed.Value} inodes used");
        Assert.True(usage.Timestamp > 0);

        // critest v1.36's consistency specs: the figure falls right after a removal, as it rose right after the pull.
        await bed.Daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:1") } });
        var removed = Assert.Single((await bed.Daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest())).ImageFilesystems);
        Assert.True(removed.UsedBytes.Value < usage.UsedBytes.Value - 2_000_000, $"{removed.UsedBytes.Value} bytes used after the removal");
        Assert.True(removed.InodesUsed.Value < usage.InodesUsed.Value - 20, $"{removed.InodesUsed.Value} inodes used after the removal");
    }

    [Theory]
    [InlineData("", StatusCode.InvalidArgument, "image.image")]
    [InlineData("Not A/Reference", StatusCode.InvalidArgument, "not a valid")]
    [InlineData("busybox@sha256:1234", StatusCode.InvalidArgument, "not a sha256 digest")]
    public async Task Bad_references_are_refused(string reference, StatusCode code, string message)
    {
        await using var daemon = await BerthDaemon.StartAsync();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = reference } }));
        Assert.Equal(code, error.StatusCode);
        Assert.Contains(message, error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_images_and_tags()
    {
        await using var bed = await ImageTestBed.StartAsync();
        await bed.Pusher.PushAsync("berth/busybox", BusyboxImage(), "1");

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:2") } }));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Contains("berth/busybox manifest 2", error.Status.Detail, StringComparison.Ordinal);

        var status = await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = bed.Ref("berth/busybox:1") } });
        Assert.Null(status.Image);
        var statusError = await Assert.ThrowsAsync<RpcException>(async () => await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest()));
        Assert.Equal(StatusCode.InvalidArgument, statusError.StatusCode);
    }

    [Fact]
    public async Task An_unreachable_registry_is_Unavailable()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        var port = RegistryServer.FreePort(); // nothing listens there
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"127.0.0.1:{port}/x:1" } }));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains($"127.0.0.1:{port}", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Images_survive_a_restart()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        using var pusher = new RegistryPusher(registry);
        var image = BusyboxImage();
        await pusher.PushAsync("berth/busybox", image, "1");
        try
        {
            await using (var first = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory }))
            {
                await first.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{registry.Host}/berth/busybox:1" } });
                first.Signal(Tmds.Linux.LibC.SIGKILL);
                await first.WaitForExitAsync(TimeSpan.FromSeconds(20));
            }
            await using var second = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
            var listed = Assert.Single((await second.Images.ListImagesAsync(new ListImagesRequest())).Images);
            Assert.Equal(image.Id, listed.Id);
            Assert.Equal([$"{registry.Host}/berth/busybox:1"], listed.RepoTags);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    internal static int CountBlobGets(string registryLog, string digest) =>
        registryLog.Split('\n').Count(line => line.Contains($"\"GET /v2/", StringComparison.Ordinal) && line.Contains($"/blobs/{digest} ", StringComparison.Ordinal));
}
