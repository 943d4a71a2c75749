using System.Diagnostics;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// PullImage of a multi-layer image of about 200 MB from a local registry, berthd and containerd
/// alternating, each pull from an empty store, wall time measured at the CRI client.
/// </summary>
internal static class PullBenchmark
{
    public static async Task<string> RunAsync(int rounds)
    {
        await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        using var pusher = new RegistryPusher(registry);
        var image = BuildImage(layers: 8, layerBytes: 25 * 1024 * 1024);
        await pusher.PushAsync("bench/big", image, "1");
        var reference = $"{registry.Host}/bench/big:1";
        var compressed = image.Layers.Sum(l => (long)l.Content.Length);
        var uncompressed = 8L * 25 * 1024 * 1024;

        await using var berth = await BerthDaemon.StartAsync();
        await using var containerd = await ContainerdDaemon.StartAsync(registry.Host);

        var berthTimes = new List<double>();
        var containerdTimes = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            // Alternate who goes first, so page cache and registry warmth favour neither.
            if (round % 2 == 0)
            {
                berthTimes.Add(await PullOnceAsync(berth.Images, reference));
                containerdTimes.Add(await PullOnceAsync(containerd.Images, reference));
            }
            else
            {
                containerdTimes.Add(await PullOnceAsync(containerd.Images, reference));
                berthTimes.Add(await PullOnceAsync(berth.Images, reference));
            }
        }

        var b = Median(berthTimes);
        var c = Median(containerdTimes);
        var mb = compressed / 1e6;
        return $"""
            PullImage, {image.Layers.Count} gzip layers, {uncompressed / 1e6:F0} MB unpacked, {mb:F0} MB compressed, median of {rounds} pulls into an empty store
            (wall time at the CRI client: download, verify, decompress, unpack; MB/s of compressed bytes):
              berth       {b:F2} s   {mb / b:F0} MB/s   (all: {string.Join(", ", berthTimes.Select(t => t.ToString("F2")))})
              containerd  {c:F2} s   {mb / c:F0} MB/s   (all: {string.Join(", ", containerdTimes.Select(t => t.ToString("F2")))})
              ratio berth/containerd = {b / c:F2} (lower is better)
            """;
    }

    private static async Task<double> PullOnceAsync(ImageService.ImageServiceClient images, string reference)
    {
        var watch = Stopwatch.StartNew();
        var pulled = await images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = reference } });
        var seconds = watch.Elapsed.TotalSeconds;
        await images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = pulled.ImageRef } });
        // containerd collects content asynchronously; give it a moment so the next pull starts empty.
        await Task.Delay(500);
        return seconds;
    }

    /// <summary>Layers half random (incompressible, like binaries) and half text-like, so gzip has real work.</summary>
    private static TestImage BuildImage(int layers, int layerBytes)
    {
        var builder = new TestImageBuilder();
        var random = new Random(42);
        for (var i = 0; i < layers; i++)
        {
            var tar = TestLayers.Tar(w =>
            {
                var files = 50;
                for (var f = 0; f < files; f++)
                {
                    var content = new byte[layerBytes / files];
                    if (f % 2 == 0)
                    {
                        random.NextBytes(content);
                    }
                    else
                    {
                        for (var k = 0; k < content.Length; k++) content[k] = (byte)"abcdefghij klmnop\n"[(k * 7 + f) % 18];
                    }
                    TestLayers.File(w, $"layer{i}/dir{f % 5}/file{f}", content, 0x1A4);
                }
            });
            builder.Layer(tar, Compression.Gzip);
        }
        return builder.Build();
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
