using System.Diagnostics;
using System.Text.Json.Nodes;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.Bench;

/// <summary>
/// What CDI costs CreateContainer on berthd: with no device and with 8 (each a device node, an env variable and a
/// read-only bind mount), alternating; and the spec directory's reload, a CreateContainer right after a change to one
/// of 100 spec files (the registry reads the directory again on that call) against one with nothing changed.
/// containerd 1.6, Debian's, has no CDI, so there is no ratio here.
/// </summary>
internal static class CdiBenchmark
{
    private const int Devices = 8;
    private const int SpecFiles = 100;

    public static async Task<string> RunAsync(int rounds)
    {
        var specs = Directory.CreateTempSubdirectory("berth-bench-cdi-").FullName;
        var data = Directory.CreateTempSubdirectory("berth-bench-cdi-data-").FullName;
        try
        {
            await using var registry = await RegistryServer.StartAsync(RegistryMode.Plain);
            var image = await BenchImage.PushSleeperAsync(registry);
            await using var berth = await BerthDaemon.StartAsync(new DaemonOptions { ExtraConfig = $"[cdi]\nspec_dirs = [\"{specs}\"]\n", LogLevel = "info" });
            await berth.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } });
            File.WriteAllText(Path.Combine(specs, "bench.json"), new JsonObject
            {
                ["cdiVersion"] = "0.6.0",
                ["kind"] = "bench.example/dev",
                ["devices"] = new JsonArray([.. Enumerable.Range(0, Devices).Select(i => (JsonNode)new JsonObject
                {
                    ["name"] = $"d{i}",
                    ["containerEdits"] = new JsonObject
                    {
                        ["env"] = new JsonArray($"DEV{i}=on"),
                        ["deviceNodes"] = new JsonArray(new JsonObject { ["path"] = $"/dev/bench{i}", ["hostPath"] = "/dev/null" }),
                        ["mounts"] = new JsonArray(new JsonObject { ["hostPath"] = data, ["containerPath"] = $"/opt/bench{i}", ["options"] = new JsonArray("ro", "bind") }),
                    },
                })]),
            }.ToJsonString());
            var pod = new PodSandboxConfig
            {
                Metadata = new PodSandboxMetadata { Name = "cdi-bench", Namespace = "bench", Uid = Guid.NewGuid().ToString() },
                Linux = new LinuxPodSandboxConfig { SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node } } },
            };
            var podId = (await berth.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
            var serial = 0;
            async Task<double> CreateAsync(IEnumerable<string> devices)
            {
                var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = $"c{serial++}" }, Image = new ImageSpec { Image = image } };
                foreach (var device in devices) config.CDIDevices.Add(new CDIDevice { Name = device });
                var watch = Stopwatch.StartNew();
                var id = (await berth.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
                var elapsed = watch.Elapsed.TotalMilliseconds;
                await berth.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });
                return elapsed;
            }

            var eight = Enumerable.Range(0, Devices).Select(i => $"bench.example/dev=d{i}").ToList();
            List<double> without = [], with = [];
            await CreateAsync([]);
            await CreateAsync(eight);
            for (var i = 0; i < rounds; i++)
            {
                without.Add(await CreateAsync([]));
                with.Add(await CreateAsync(eight));
            }

            for (var i = 0; i < SpecFiles; i++)
                File.WriteAllText(Path.Combine(specs, $"vendor{i}.json"), Spec(i, "v1"));
            List<double> unchanged = [], changed = [];
            await CreateAsync(["bench.example/v0=a"]);
            for (var i = 0; i < rounds; i++)
            {
                unchanged.Add(await CreateAsync([$"bench.example/v{i % SpecFiles}=a"]));
                File.WriteAllText(Path.Combine(specs, $"vendor{i % SpecFiles}.json"), Spec(i % SpecFiles, $"v{i}"));
                changed.Add(await CreateAsync([$"bench.example/v{i % SpecFiles}=a"]));
            }
            await berth.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await berth.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
            return $"""
                CDI on berthd, CreateContainer alone (runc create included), {rounds} each, alternating (ms):
                                                                       p50     p99
                  no CDI device                                   {P(without, 50),7:F1} {P(without, 99),7:F1}
                  {Devices} CDI devices (node, env, ro bind mount each)      {P(with, 50),7:F1} {P(with, 99),7:F1}   p50 cost per device {(P(with, 50) - P(without, 50)) / Devices:F2}
                  1 device, {SpecFiles} spec files, none changed           {P(unchanged, 50),7:F1} {P(unchanged, 99),7:F1}
                  1 device, {SpecFiles} spec files, one just rewritten     {P(changed, 50),7:F1} {P(changed, 99),7:F1}   reload of {SpecFiles + 1} files, p50 {P(changed, 50) - P(unchanged, 50):F1}
                """;
        }
        finally
        {
            Directory.Delete(specs, recursive: true);
            Directory.Delete(data, recursive: true);
        }
    }

    private static string Spec(int vendor, string value) => new JsonObject
    {
        ["cdiVersion"] = "0.6.0",
        ["kind"] = $"bench.example/v{vendor}",
        ["containerEdits"] = new JsonObject { ["env"] = new JsonArray($"VENDOR={vendor}") },
        ["devices"] = new JsonArray(
            new JsonObject
            {
                ["name"] = "a",
                ["containerEdits"] = new JsonObject
                {
                    ["env"] = new JsonArray($"A={value}"),
                    ["deviceNodes"] = new JsonArray(new JsonObject { ["path"] = $"/dev/v{vendor}a", ["hostPath"] = "/dev/zero" }),
                },
            },
            new JsonObject { ["name"] = "b", ["containerEdits"] = new JsonObject { ["env"] = new JsonArray("B=1") } }),
    }.ToJsonString();

    private static double P(List<double> values, int percentile) => Percentile.Of(values, percentile);
}
