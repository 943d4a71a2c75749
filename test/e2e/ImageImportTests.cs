using System.Formats.Tar;
using System.Text;
using System.Text.Json.Nodes;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary><c>berthd import</c>: images from an OCI layout or a docker save archive, without a registry.</summary>
public sealed class ImageImportTests
{
    [Fact]
    public async Task An_OCI_layout_tarball_imports_and_berthd_then_serves_it()
    {
        var image = new TestImageBuilder().Layer(TestLayers.Base()).Layer(TestLayers.Overlay(), Compression.Zstd).Build();
        await WithStoppedDaemonDirectory(async (directory, config) =>
        {
            var archive = Path.Combine(directory, "layout.tar");
            WriteTar(archive, OciLayout(image, "registry.k8s.io/pause:3.10"));

            var (code, output) = await BerthDaemon.RunToExitAsync(["import", "--config", config, archive], TimeSpan.FromSeconds(60));
            Assert.True(code == 0, output);
            Assert.Contains($"imported registry.k8s.io/pause:3.10 as {image.Id}", output, StringComparison.Ordinal);

            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
            var status = await daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = "registry.k8s.io/pause:3.10" } });
            Assert.Equal(image.Id, status.Image.Id);
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(daemon.RootPath, "snapshots", "ingest")));
        });
    }

    [Fact]
    public async Task A_docker_save_archive_imports_with_its_repo_tags()
    {
        var tar = TestLayers.Base();
        var config = new TestImageBuilder().Layer(tar).Build().Config;
        var configHex = config.Digest[7..];
        var files = new Dictionary<string, byte[]>
        {
            [$"{configHex}.json"] = config.Content,
            ["layer1/layer.tar"] = tar,
            ["manifest.json"] = Encoding.UTF8.GetBytes(new JsonArray(new JsonObject
            {
                ["Config"] = $"{configHex}.json",
                ["RepoTags"] = new JsonArray("busybox:saved", "example.com/team/busybox:v1"),
                ["Layers"] = new JsonArray("layer1/layer.tar"),
            }).ToJsonString()),
        };
        await WithStoppedDaemonDirectory(async (directory, configPath) =>
        {
            var archive = Path.Combine(directory, "saved.tar");
            WriteTar(archive, files);

            var (code, output) = await BerthDaemon.RunToExitAsync(["import", "--config", configPath, archive], TimeSpan.FromSeconds(60));
            Assert.True(code == 0, output);

            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
            var listed = Assert.Single((await daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
            Assert.Equal(config.Digest, listed.Id);
            Assert.Equal(["docker.io/library/busybox:saved", "example.com/team/busybox:v1"], listed.RepoTags.Order());
        });
    }

    [Fact]
    public async Task Import_refuses_while_berthd_serves()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        var (code, output) = await BerthDaemon.RunToExitAsync(["import", "--config", daemon.ConfigPath, "/nonexistent.tar"], TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, code);
        Assert.Contains("berthd is serving on", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Import_names_a_missing_archive()
    {
        await WithStoppedDaemonDirectory(async (_, config) =>
        {
            var (code, output) = await BerthDaemon.RunToExitAsync(["import", "--config", config, "/nonexistent.tar"], TimeSpan.FromSeconds(30));
            Assert.NotEqual(0, code);
            Assert.Contains("/nonexistent.tar: no such file or directory", output, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task An_exported_image_reads_in_skopeo_and_imports_into_a_fresh_root_that_runs_it_without_a_registry()
    {
        var image = new TestImageBuilder().Layer(TestLayers.Base(), Compression.Gzip).Layer(TestLayers.OneFile("marker", "exported")).Build();
        var archive = Path.Combine(Path.GetTempPath(), $"berth-export-{Guid.NewGuid():N}.tar");
        try
        {
            await using (var source = await ImageTestBed.StartAsync())
            {
                await source.Pusher.PushAsync("berth/exported", image, "1");
                var name = source.Ref("berth/exported:1");
                await source.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = name } });

                // berthd is serving: export only reads the store.
                var (code, output) = await BerthCli.RunAsync(source.Daemon, ["image", "export", "--config", source.Daemon.ConfigPath, name, archive]);
                Assert.True(code == 0, output);
                Assert.Contains($"exported {name} to {archive}", output, StringComparison.Ordinal);
            }
            var inspect = Host.Run(TestEnvironment.RequireTool("/usr/bin/skopeo", "skopeo"), "inspect", "--raw", $"oci-archive:{archive}:1");
            Assert.True(inspect.ExitCode == 0, inspect.Output);
            Assert.Contains(image.Id, inspect.Output, StringComparison.Ordinal);

            await WithStoppedDaemonDirectory(async (directory, config) =>
            {
                var (code, output) = await BerthDaemon.RunToExitAsync(["import", "--config", config, archive], TimeSpan.FromSeconds(60));
                Assert.True(code == 0, output);
                await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
                var status = await daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image.Id } });
                Assert.Equal(image.Id, status.Image.Id);

                // No registry runs now: the container starts from the imported layers alone.
                var pod = new PodSandboxConfig
                {
                    Metadata = new PodSandboxMetadata { Name = "imported", Namespace = "e2e", Uid = Guid.NewGuid().ToString() },
                    Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } } },
                    LogDirectory = Path.Combine(directory, "logs"),
                };
                var podId = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
                var container = new ContainerConfig { Metadata = new ContainerMetadata { Name = "c" }, Image = new ImageSpec { Image = image.Id }, LogPath = "c.log" };
                container.Command.AddRange(["/bin/cat", "/marker"]);
                var id = (await daemon.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = container, SandboxConfig = pod })).ContainerId;
                await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
                ContainerStatus exited;
                do
                {
                    await Task.Delay(100);
                    exited = (await daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
                }
                while (exited.State != ContainerState.ContainerExited);
                Assert.Equal(0, exited.ExitCode);
                Assert.Contains("exported", await File.ReadAllTextAsync(Path.Combine(directory, "logs", "c.log")), StringComparison.Ordinal);
                await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
            });
        }
        finally
        {
            File.Delete(archive);
        }
    }

    private static async Task WithStoppedDaemonDirectory(Func<string, string, Task> test)
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        try
        {
            // Start once so the config exists, then stop: import works on a store nobody serves.
            string config;
            await using (var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory }))
            {
                config = daemon.ConfigPath;
            }
            await test(directory, config);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static Dictionary<string, byte[]> OciLayout(TestImage image, string name)
    {
        var files = new Dictionary<string, byte[]>
        {
            ["oci-layout"] = """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray(),
            ["index.json"] = Encoding.UTF8.GetBytes(new JsonObject
            {
                ["schemaVersion"] = 2,
                ["manifests"] = new JsonArray(new JsonObject
                {
                    ["mediaType"] = image.ManifestMediaType,
                    ["digest"] = image.ManifestDigest,
                    ["size"] = image.Manifest.Length,
                    ["annotations"] = new JsonObject { ["io.containerd.image.name"] = name, ["org.opencontainers.image.ref.name"] = "3.10" },
                }),
            }.ToJsonString()),
            [$"blobs/sha256/{image.ManifestDigest[7..]}"] = image.Manifest,
            [$"blobs/sha256/{image.Config.Digest[7..]}"] = image.Config.Content,
        };
        foreach (var layer in image.Layers) files[$"blobs/sha256/{layer.Digest[7..]}"] = layer.Content;
        return files;
    }

    private static void WriteTar(string path, Dictionary<string, byte[]> files)
    {
        using var stream = File.Create(path);
        using var writer = new TarWriter(stream, TarEntryFormat.Pax);
        foreach (var (name, content) in files)
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content), Mode = (UnixFileMode)0x1A4 });
    }
}
