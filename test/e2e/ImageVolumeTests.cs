using System.Text;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>Image volumes (KEP-4639): a CRI mount naming an image mounts that image read-only in the container.</summary>
public sealed class ImageVolumeTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private async Task<(string Reference, TestImage Image)> PushDataImageAsync(string repository)
    {
        var data = new TestImageBuilder()
            .Layer(TestLayers.Tar(w =>
            {
                TestLayers.Dir(w, "srv/");
                TestLayers.Dir(w, "srv/models/");
                TestLayers.File(w, "srv/readme", Encoding.UTF8.GetBytes("top\n"), 0x1A4);
                TestLayers.File(w, "srv/models/model.txt", Encoding.UTF8.GetBytes("weights\n"), 0x1A4);
                TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, "srv/escape", "/../../../../etc");
            }))
            .Layer(TestLayers.OneFile("srv/models/extra", "2\n"))
            .Build();
        using (var pusher = new RegistryPusher(bed.Registry)) await pusher.PushAsync(repository, data, "1");
        var reference = $"{bed.Registry.Host}/{repository}:1";
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = reference } });
        return (reference, data);
    }

    private ContainerConfig Mounting(string name, string reference, string containerPath, string subPath = "", bool readOnly = true)
    {
        var config = bed.Container(name, "sleep", "600");
        config.Mounts.Add(new Mount { ContainerPath = containerPath, Image = new ImageSpec { Image = reference }, ImageSubPath = subPath, Readonly = readOnly });
        return config;
    }

    [Fact]
    public async Task Two_containers_mount_one_image_read_only_one_by_a_sub_path_and_removal_leaves_no_mount()
    {
        var (reference, data) = await PushDataImageAsync("berth/data");
        var pod = bed.Pod("image-volume");
        var podId = await bed.RunPodAsync(pod);
        List<string> snapshots;
        try
        {
            var whole = await bed.RunAsync(podId, pod, Mounting("whole", reference, "/data"));
            var models = await bed.RunAsync(podId, pod, Mounting("models", reference, "/models", "srv/models"));

            Assert.Equal((0, "top\n"), Pick(await bed.ExecAsync(whole, "cat", "/data/srv/readme")));
            Assert.Equal((0, "2\n"), Pick(await bed.ExecAsync(whole, "cat", "/data/srv/models/extra")));
            Assert.Equal((0, "weights\n"), Pick(await bed.ExecAsync(models, "cat", "/models/model.txt")));
            var write = await bed.ExecAsync(models, "sh", "-c", "echo x > /models/new");
            Assert.NotEqual(0, write.ExitCode);
            Assert.Contains("Read-only file system", write.Stderr, StringComparison.Ordinal);

            var mount = Assert.Single((await bed.StatusAsync(models)).Mounts, m => m.ContainerPath == "/models");
            Assert.Equal((data.Id, "srv/models", true), (mount.Image?.Image, mount.ImageSubPath, mount.Readonly));

            // Removing the image while it is mounted removes its names; the mounted snapshots stay for the containers.
            var status = await bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = reference }, Verbose = true });
            using (var info = System.Text.Json.JsonDocument.Parse(status.Info["info"]))
                snapshots = [.. info.RootElement.GetProperty("lowerDirs").EnumerateArray().Select(e => e.GetString()!)];
            await bed.Daemon.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = reference } });
            Assert.Equal((0, "weights\n"), Pick(await bed.ExecAsync(models, "cat", "/models/model.txt")));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
        Assert.DoesNotContain(Host.MountsUnder(bed.Daemon.Directory), m => m.Contains("image-mounts", StringComparison.Ordinal));
        // With the last container that mounted them gone, the removed image's snapshots are collected.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (snapshots.Any(Directory.Exists))
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"snapshots left: {string.Join(", ", snapshots.Where(Directory.Exists))}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task What_an_image_volume_cannot_be_is_refused_naming_the_field_and_leaves_nothing()
    {
        var (reference, _) = await PushDataImageAsync("berth/refused");
        var pod = bed.Pod("image-volume-refused");
        var podId = await bed.RunPodAsync(pod);
        try
        {
            foreach (var (config, code, message) in new[]
                     {
                         (Mounting("writable", reference, "/data", readOnly: false), StatusCode.InvalidArgument, "mounts[0].readonly"),
                         (Mounting("absent", $"{bed.Registry.Host}/berth/absent:1", "/data"), StatusCode.NotFound, "mounts[0].image: image"),
                         (Mounting("no-sub-path", reference, "/data", "srv/missing"), StatusCode.InvalidArgument, "mounts[0].image_sub_path: 'srv/missing' does not exist"),
                         // A link in the image is followed with the image as its root, never to the node's /etc.
                         (Mounting("escape", reference, "/data", "srv/escape"), StatusCode.InvalidArgument, "mounts[0].image_sub_path: 'srv/escape' does not exist"),
                         (Mounting("dot-dot", reference, "/data", "../../../../etc"), StatusCode.InvalidArgument, "mounts[0].image_sub_path: '../../../../etc' does not exist"),
                     })
            {
                var error = await Assert.ThrowsAsync<RpcException>(async () => await bed.CreateAsync(podId, pod, config));
                Assert.Equal(code, error.StatusCode);
                Assert.Contains(message, error.Status.Detail, StringComparison.Ordinal);
            }
            Assert.DoesNotContain((await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers, c => c.PodSandboxId == podId);
            Assert.DoesNotContain(Host.MountsUnder(bed.Daemon.Directory), m => m.Contains("image-mounts", StringComparison.Ordinal));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    private static (int ExitCode, string Stdout) Pick((int ExitCode, string Stdout, string Stderr) result) => (result.ExitCode, result.Stdout);
}
