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

    /// <summary>A daemon and a registry holding the test image, and the proxy in front of it that pulls go through.</summary>
    private sealed class FaultBed(ImageTestBed bed, FaultyRegistryProxy proxy, TestImage image) : IAsyncDisposable
    {
        public ImageTestBed Bed => bed;
        public FaultyRegistryProxy Proxy => proxy;
        public TestImage Image => image;

        /// <summary>The layer the faults are put on: the big one, busybox.</summary>
        public string Layer => image.Layers[0].Digest;

        private PullImageRequest Request => new() { Image = new ImageSpec { Image = $"{proxy.Host}/berth/faults:1" } };

        public async Task<PullImageResponse> PullAsync(DateTime? deadline = null) => await bed.Daemon.Images.PullImageAsync(Request, deadline: deadline);

        public async ValueTask DisposeAsync()
        {
            await proxy.DisposeAsync();
            await bed.DisposeAsync();
        }
    }

    private static async Task<FaultBed> StartAsync(string extraConfig = "")
    {
        var bed = await ImageTestBed.StartAsync(extraConfig: _ => extraConfig);
        var image = Image();
        await bed.Pusher.PushAsync("berth/faults", image, "1");
        return new FaultBed(bed, FaultyRegistryProxy.Start(bed.Registry), image);
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
        await using var t = await StartAsync("[images]\npull_progress_timeout = \"2s\"\n");
        t.Proxy.Fault = new BlobFault(t.Layer, 64 * 1024, BlobFaultKind.Hold);

        var watch = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<RpcException>(async () => await t.PullAsync());
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains(t.Layer, error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("no progress for 2 s after 65536 bytes", error.Status.Detail, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(30));
        AssertNothingLeft(t.Bed);

        t.Proxy.Release();
        await t.PullAsync();
    }

    [Fact]
    public async Task A_connection_cut_mid_layer_is_resumed_with_a_range_request()
    {
        await using var t = await StartAsync();
        t.Proxy.Fault = new BlobFault(t.Layer, 100_000, BlobFaultKind.Cut, Times: 2);

        var pulled = await t.PullAsync();

        Assert.Equal(t.Image.Id, pulled.ImageRef);
        var requests = t.Proxy.BlobRequests.Where(r => r.Contains(t.Layer, StringComparison.Ordinal)).ToList();
        Assert.Equal(3, requests.Count);
        Assert.DoesNotContain("bytes=", requests[0], StringComparison.Ordinal);
        // Each cut comes 100,000 bytes into what the request sent, so each resumption starts that much further on.
        Assert.EndsWith("bytes=100000-", requests[1], StringComparison.Ordinal);
        Assert.EndsWith("bytes=200000-", requests[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pull_its_caller_gives_up_stops_downloading_and_leaves_nothing()
    {
        await using var t = await StartAsync();
        t.Proxy.Fault = new BlobFault(t.Layer, 64 * 1024, BlobFaultKind.Trickle);

        var error = await Assert.ThrowsAsync<RpcException>(async () => await t.PullAsync(DateTime.UtcNow.AddSeconds(3)));
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        // berthd closed the download: the trickle's next writes fail.
        await t.Proxy.ClientGone.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await WaitAsync(() => !Directory.EnumerateFiles(Path.Combine(t.Bed.Daemon.RootPath, "content", "blobs", "sha256")).Any());
        AssertNothingLeft(t.Bed);
    }

    [Fact]
    public async Task A_shared_pull_goes_on_while_another_caller_waits()
    {
        await using var t = await StartAsync();
        t.Proxy.Fault = new BlobFault(t.Layer, 64 * 1024, BlobFaultKind.Hold);
        var patient = t.PullAsync();
        await WaitAsync(() => !t.Proxy.BlobRequests.IsEmpty);
        var impatient = await Assert.ThrowsAsync<RpcException>(async () => await t.PullAsync(DateTime.UtcNow.AddSeconds(2)));
        Assert.Equal(StatusCode.DeadlineExceeded, impatient.StatusCode);

        t.Proxy.Release();
        Assert.Equal(t.Image.Id, (await patient).ImageRef);
        Assert.Equal(1, t.Proxy.BlobRequests.Count(r => r.Contains(t.Layer, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_layer_two_images_share_is_fetched_again_by_one_when_the_other_is_given_up()
    {
        await using var t = await StartAsync();
        await t.Bed.Pusher.PushAsync("berth/twin", t.Image, "1");
        t.Proxy.Fault = new BlobFault(t.Layer, 64 * 1024, BlobFaultKind.Hold);
        var given = t.PullAsync(DateTime.UtcNow.AddSeconds(3));
        await WaitAsync(() => !t.Proxy.BlobRequests.IsEmpty);
        // The twin needs the same layer, and waits for the download the first pull started.
        var twin = t.Bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{t.Proxy.Host}/berth/twin:1" } }).ResponseAsync;

        var error = await Assert.ThrowsAsync<RpcException>(async () => await given);
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        // The twin asks for the layer itself once the download it waited for is stopped.
        await WaitAsync(() => t.Proxy.BlobRequests.Count(r => r.Contains($"/berth/twin/blobs/{t.Layer}", StringComparison.Ordinal)) == 1);
        t.Proxy.Release();
        Assert.Equal(t.Image.Id, (await twin).ImageRef);
        var status = await t.Bed.Daemon.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = t.Image.Id } });
        Assert.Equal([$"{t.Proxy.Host}/berth/twin:1"], status.Image.RepoTags);
    }

    [Fact]
    public async Task A_pull_under_way_shows_its_bytes_per_layer_in_Status_and_berth_pull_reports_them()
    {
        await using var t = await StartAsync();
        t.Proxy.Fault = new BlobFault(t.Layer, 64 * 1024, BlobFaultKind.Hold);
        var cli = BerthCli.RunAsync(t.Bed.Daemon, ["pull", $"{t.Proxy.Host}/berth/faults:1"]);

        // Status(verbose).info["pulls"]: the held layer stands at the bytes the proxy let through.
        long done = -1;
        var watch = Stopwatch.StartNew();
        while (done != 64 * 1024)
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(20)) throw new TimeoutException($"the held layer showed {done} bytes, not 65536");
            await Task.Delay(100);
            var status = await t.Bed.Daemon.Runtime.StatusAsync(new StatusRequest { Verbose = true });
            using var pulls = System.Text.Json.JsonDocument.Parse(status.Info["pulls"]);
            done = pulls.RootElement.EnumerateArray()
                .Where(p => p.GetProperty("image").GetString() == $"{t.Proxy.Host}/berth/faults:1")
                .SelectMany(p => p.GetProperty("layers").EnumerateArray())
                .Where(l => l.GetProperty("digest").GetString() == t.Layer)
                .Select(l => l.GetProperty("done").GetInt64()).DefaultIfEmpty(-1).First();
        }
        await Task.Delay(600); // berth samples every 250 ms
        t.Proxy.Release();

        var (code, output) = await cli;
        Assert.True(code == 0, output);
        Assert.Contains($"layer {t.Layer[..19]}: 64kB of ", output, StringComparison.Ordinal);
        Assert.Contains($"layer {t.Layer[..19]}: done, ", output, StringComparison.Ordinal);
        Assert.Contains($"pulled {t.Proxy.Host}/berth/faults:1 in ", output, StringComparison.Ordinal);
        var after = await t.Bed.Daemon.Runtime.StatusAsync(new StatusRequest { Verbose = true });
        Assert.Equal("[]", after.Info["pulls"]);
    }

    [Fact]
    public async Task On_a_terminal_berth_pull_redraws_a_bar_per_layer_in_place()
    {
        await using var t = await StartAsync();
        t.Proxy.Fault = new BlobFault(t.Layer, 64 * 1024, BlobFaultKind.Hold);
        var cli = BerthCli.RunOnTerminalAsync(t.Bed.Daemon, $"$BERTH pull {t.Proxy.Host}/berth/faults:1");

        await WaitAsync(() => t.Proxy.BlobRequests.Any(r => r.Contains(t.Layer, StringComparison.Ordinal)));
        await Task.Delay(1500); // several redraws of the held layer
        t.Proxy.Release();

        var (code, output) = await cli;
        Assert.True(code == 0, output);
        var layer = t.Layer[..19];
        // Each redraw moves the cursor back up over the lines it drew and clears each line before writing it.
        Assert.Matches(@"\u001b\[[12]A", output);
        Assert.Contains($"\r\u001b[K{layer} [====================] ", output, StringComparison.Ordinal);
        Assert.Matches($@"{layer} \[=* *\] 64kB/[0-9.]+[kM]B ", output);
        Assert.Contains(" done", output, StringComparison.Ordinal);
        Assert.DoesNotContain($"layer {layer}:", output, StringComparison.Ordinal);
        Assert.Contains($"pulled {t.Proxy.Host}/berth/faults:1 in ", output, StringComparison.Ordinal);
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
