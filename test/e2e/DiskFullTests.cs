using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// berthd on a small tmpfs that a filler file all but fills: a pull and a CreateContainer that meet ENOSPC answer
/// ResourceExhausted naming the path, leave nothing half-written, and succeed once the space is back.
/// </summary>
public sealed class DiskFullTests
{
    private sealed class SmallDisk : IDisposable
    {
        public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("be-full-").FullName;

        private string Filler => Path.Combine(Directory, "filler");

        public SmallDisk()
        {
            var mounted = Host.Run("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", Directory);
            if (mounted.ExitCode != 0) throw new InvalidOperationException($"mount tmpfs: {mounted.Output}");
        }

        /// <summary>Fills the disk but for about <paramref name="leftBytes"/>.</summary>
        public void Fill(long leftBytes)
        {
            var info = new DriveInfo(Directory);
            var size = Math.Max(0, info.AvailableFreeSpace - leftBytes);
            using var file = new FileStream(Filler, FileMode.Append);
            var block = new byte[1 << 20];
            Random.Shared.NextBytes(block);
            for (long written = 0; written < size; written += block.Length)
                file.Write(block, 0, (int)Math.Min(block.Length, size - written));
        }

        public void Free() => File.Delete(Filler);

        public void Dispose()
        {
            foreach (var mount in Host.MountsUnder(Directory).Reverse().Where(m => m != Directory)) Host.Run("umount", "-l", mount);
            Host.Run("umount", "-l", Directory);
            System.IO.Directory.Delete(Directory);
        }
    }

    private static List<string> Leftovers(BerthDaemon daemon)
    {
        var root = daemon.RootPath;
        var found = new List<string>();
        foreach (var dir in new[] { "content/ingest", "snapshots/ingest", "snapshots/trash" })
            found.AddRange(System.IO.Directory.EnumerateFileSystemEntries(Path.Combine(root, dir)));
        found.AddRange(System.IO.Directory.EnumerateFiles(Path.Combine(root, "images"), "*.tmp"));
        found.AddRange(System.IO.Directory.EnumerateFiles(Path.Combine(root, "content", "blobs", "sha256")));
        return found;
    }

    [Fact]
    public async Task A_pull_that_fills_the_disk_is_ResourceExhausted_leaves_nothing_and_works_once_space_is_back()
    {
        using var disk = new SmallDisk();
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        using var pusher = new RegistryPusher(registry);
        // Incompressible content, so the blob itself does not fit: 4 MiB, with 1 MiB left on the disk.
        var payload = new byte[4 << 20];
        Random.Shared.NextBytes(payload);
        await pusher.PushAsync("berth/big", new TestImageBuilder().Layer(TestLayers.Tar(w => TestLayers.File(w, "big", payload, 0x1A4))).Build(), "1");
        var reference = $"{registry.Host}/berth/big:1";
        await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = disk.Directory });
        disk.Fill(leftBytes: 1 << 20);

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = reference } }));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Contains("No space left on device", error.Status.Detail, StringComparison.Ordinal);
        Assert.True(error.Status.Detail.Contains(daemon.RootPath, StringComparison.Ordinal), error.Status.Detail);
        Assert.Empty(Leftovers(daemon));
        Assert.Empty((await daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);

        disk.Free();
        await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = reference } });
        Assert.Single((await daemon.Images.ListImagesAsync(new ListImagesRequest())).Images);
    }

    [Fact]
    public async Task A_CreateContainer_on_a_full_disk_is_ResourceExhausted_rolls_back_and_works_once_space_is_back()
    {
        using var disk = new SmallDisk();
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        using var pusher = new RegistryPusher(registry);
        await pusher.PushAsync("berth/busybox", new TestImageBuilder().Layer(TestLayers.Base()).Build(), "1");
        var image = $"{registry.Host}/berth/busybox:1";
        await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { Directory = disk.Directory });
        await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
        var pod = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = "full", Namespace = "default", Uid = Guid.NewGuid().ToString() },
            Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } } },
        };
        var podId = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
        var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "c" }, Image = new ImageSpec { Image = image } };
        config.Command.Add("/bin/sh");
        var mountsBefore = Host.MountsUnder(disk.Directory).Length;
        disk.Fill(leftBytes: 0);

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod }));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Contains("No space left on device", error.Status.Detail, StringComparison.Ordinal);
        Assert.True(error.Status.Detail.Contains(disk.Directory, StringComparison.Ordinal), error.Status.Detail);
        Assert.Empty((await daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers);
        Assert.Equal(["records"], System.IO.Directory.EnumerateFileSystemEntries(Path.Combine(daemon.RootPath, "containers")).Select(Path.GetFileName));
        Assert.Empty(System.IO.Directory.EnumerateFileSystemEntries(Path.Combine(daemon.RootPath, "containers", "records")));
        Assert.Equal(mountsBefore, Host.MountsUnder(disk.Directory).Length);

        disk.Free();
        var id = (await daemon.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
        await daemon.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
    }
}
