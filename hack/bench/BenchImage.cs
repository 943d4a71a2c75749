using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>The image both runtimes run in the benchmarks.</summary>
internal static class BenchImage
{
    /// <summary>
    /// busybox whose Cmd sleeps for good; pushed to <paramref name="registry"/>. It is also containerd's sandbox
    /// image, so its Cmd must keep running, as a pause container does.
    /// </summary>
    public static async Task<string> PushSleeperAsync(RegistryServer registry)
    {
        using var pusher = new RegistryPusher(registry);
        await pusher.PushAsync("bench/busybox", new TestImageBuilder().Layer(TestLayers.Base())
            .RunConfig(c => c["Cmd"] = new System.Text.Json.Nodes.JsonArray("/bin/busybox", "sleep", "2147483647")).Build(), "1");
        return $"{registry.Host}/bench/busybox:1";
    }
}
