using System.Diagnostics;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// Pulls through a proxy that stalls, trickles or cuts a layer: the progress timeout, resumption by range
/// request, and pulls given up by their callers, each leaving nothing behind.
/// </summary>
public sealed class PullFaultTests
{
    private static TestImage Image() => new TestImageBuilder().Layer(TestLayers.Base()).Layer(TestLayers.OneFile("etc/motd", "faults\n")).Build();

    private static async Task<(ImageTestBed Bed, FaultyRegistryProxy Proxy, TestImage Image)> StartAsync(string extraConfig = "")
    {
        var bed = await ImageTestBed.StartAsync(extraConfig: _ => extraConfig);
        var image = Image();
        await bed.Pusher.PushAsync("berth/faults", image, "1");
        return (bed, FaultyRegistryProxy.Start(bed.Registry), image);
    }

    private static void AssertNothingLeft(ImageTestBed bed)
    {
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(bed.Daemon.RootPath, "content", "blobs", "sha256")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(bed.Daemon.RootPath, "content", "ingest")));
        Assert.Equal(["ingest", "trash"], Directory.EnumerateDirectories(Path.Combine(bed.Daemon.RootPath, "snapshots")).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task A_layer_that_stalls_fails_the_pull_with_DeadlineExceeded_after_the_progress_timeout()
    {
        var (bed, proxy, image) = await StartAsync("[images]\npull_progress_timeout = \"2s\"\n");
        await using var _ = bed;
        await using var __ = proxy;
        var layer = image.Layers[0].Digest;
        proxy.Fault = new BlobFault(layer, 64 * 1024, BlobFaultKind.Hold);

        var watch = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{proxy.Host}/berth/faults:1" } }));
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains(layer, error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("no progress for 2 s after 65536 bytes", error.Status.Detail, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(30));
        AssertNothingLeft(bed);

        proxy.Release();
        await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{proxy.Host}/berth/faults:1" } });
    }

    [Fact]
    public async Task A_connection_cut_mid_layer_is_resumed_with_a_range_request()
    {
        var (bed, proxy, image) = await StartAsync();
        await using var _ = bed;
        await using var __ = proxy;
        var layer = image.Layers[0].Digest;
        proxy.Fault = new BlobFault(layer, 100_000, BlobFaultKind.Cut, Times: 2);

        var pulled = await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{proxy.Host}/berth/faults:1" } });

        Assert.Equal(image.Id, pulled.ImageRef);
        var requests = proxy.BlobRequests.Where(r => r.Contains(layer, StringComparison.Ordinal)).ToList();
        Assert.Equal(3, requests.Count);
        Assert.DoesNotContain("bytes=", requests[0], StringComparison.Ordinal);
        // Each cut comes 100,000 bytes into what the request sent, so each resumption starts that much further on.
        Assert.EndsWith("bytes=100000-", requests[1], StringComparison.Ordinal);
        Assert.EndsWith("bytes=200000-", requests[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pull_its_caller_gives_up_stops_downloading_and_leaves_nothing()
    {
        var (bed, proxy, image) = await StartAsync();
        await using var _ = bed;
        await using var __ = proxy;
        proxy.Fault = new BlobFault(image.Layers[0].Digest, 64 * 1024, BlobFaultKind.Trickle);

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{proxy.Host}/berth/faults:1" } },
                deadline: DateTime.UtcNow.AddSeconds(3)));
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        // berthd closed the download: the trickle's next writes fail.
        await proxy.ClientGone.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await WaitAsync(() => !Directory.EnumerateFiles(Path.Combine(bed.Daemon.RootPath, "content", "blobs", "sha256")).Any());
        AssertNothingLeft(bed);
    }

    [Fact]
    public async Task A_shared_pull_goes_on_while_another_caller_waits()
    {
        var (bed, proxy, image) = await StartAsync();
        await using var _ = bed;
        await using var __ = proxy;
        proxy.Fault = new BlobFault(image.Layers[0].Digest, 64 * 1024, BlobFaultKind.Hold);
        var request = new PullImageRequest { Image = new ImageSpec { Image = $"{proxy.Host}/berth/faults:1" } };

        var patient = bed.Daemon.Images.PullImageAsync(request).ResponseAsync;
        await WaitAsync(() => !proxy.BlobRequests.IsEmpty);
        var impatient = await Assert.ThrowsAsync<RpcException>(async () =>
            await bed.Daemon.Images.PullImageAsync(request, deadline: DateTime.UtcNow.AddSeconds(2)));
        Assert.Equal(StatusCode.DeadlineExceeded, impatient.StatusCode);

        proxy.Release();
        Assert.Equal(image.Id, (await patient).ImageRef);
        Assert.Equal(1, proxy.BlobRequests.Count(r => r.Contains(image.Layers[0].Digest, StringComparison.Ordinal)));
    }

    private static async Task WaitAsync(Func<bool> condition)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(20)) throw new TimeoutException("the condition did not hold within 20 s");
            await Task.Delay(100);
        }
    }
}
