using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

[Collection(SharedDaemonCollection.Name)]
public sealed partial class RuntimeInfoTests(DaemonFixture fixture)
{
    private BerthDaemon Daemon => fixture.Daemon;

    [Fact]
    public async Task Version_names_berth_and_CRI_v1()
    {
        var version = await Daemon.Runtime.VersionAsync(new VersionRequest { Version = "0.1.0" });

        Assert.Equal("berth", version.RuntimeName);
        Assert.Equal("v1", version.RuntimeApiVersion);
        Assert.Equal("0.1.0", version.Version);
        Assert.Matches(@"^\d+\.\d+\.\d+", version.RuntimeVersion);
    }

    [Fact]
    public async Task Status_reports_both_conditions_with_reasons()
    {
        var status = await Daemon.Runtime.StatusAsync(new StatusRequest());

        var runtime = Assert.Single(status.Status.Conditions, c => c.Type == "RuntimeReady");
        Assert.True(runtime.Status);
        var network = Assert.Single(status.Status.Conditions, c => c.Type == "NetworkReady");
        if (!network.Status)
        {
            Assert.NotEmpty(network.Reason);
            Assert.NotEmpty(network.Message);
        }
        Assert.Empty(status.Info);
    }

    [Fact]
    public async Task Verbose_status_info_values_are_JSON_documents()
    {
        var status = await Daemon.Runtime.StatusAsync(new StatusRequest { Verbose = true });

        Assert.NotEmpty(status.Info);
        foreach (var (key, value) in status.Info)
        {
            // crictl info unmarshals each value; anything that is not JSON breaks it.
            using var document = JsonDocument.Parse(value);
            Assert.False(string.IsNullOrEmpty(key));
        }
        using var config = JsonDocument.Parse(status.Info["config"]);
        Assert.Equal(Daemon.RootPath, config.RootElement.GetProperty("root").GetString());
        Assert.Equal(Daemon.SocketPath, config.RootElement.GetProperty("grpc").GetProperty("socket").GetString());
    }

    [Fact]
    public async Task RuntimeConfig_reports_the_cgroupfs_driver()
    {
        var config = await Daemon.Runtime.RuntimeConfigAsync(new RuntimeConfigRequest());
        Assert.Equal(CgroupDriver.Cgroupfs, config.Linux.CgroupDriver);
    }

    [Fact]
    public async Task Every_CRI_RPC_is_served_and_none_answers_Unimplemented()
    {
        // The last ones built: checkpoint and restore, which answer for what they were asked.
        var container = await Assert.ThrowsAsync<RpcException>(async () =>
            await Daemon.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = "x", Location = "/tmp/x.tar" }));
        Assert.Equal(StatusCode.NotFound, container.StatusCode);
        var pod = await Assert.ThrowsAsync<RpcException>(async () =>
            await Daemon.Runtime.RestorePodAsync(new RestorePodRequest { CheckpointPath = "/nonexistent-checkpoint" }));
        Assert.Equal(StatusCode.NotFound, pod.StatusCode);

        await Daemon.Runtime.VersionAsync(new VersionRequest());
    }

    [Fact]
    public async Task Metrics_count_the_calls_made()
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Daemon.MetricsPort}") };
        const string method = "/runtime.v1.RuntimeService/RuntimeConfig";
        var before = await ReadCounterAsync(http, method, "OK");

        for (var i = 0; i < 7; i++)
            await Daemon.Runtime.RuntimeConfigAsync(new RuntimeConfigRequest());

        var after = await ReadCounterAsync(http, method, "OK");
        Assert.Equal(before + 7, after);

        var text = await http.GetStringAsync("/metrics");
        Assert.Contains($"berth_grpc_request_duration_seconds_count{{method=\"{method}\"}}", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_count_failures_by_status_code()
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Daemon.MetricsPort}") };
        const string method = "/runtime.v1.RuntimeService/CheckpointPod";
        var before = await ReadCounterAsync(http, method, "InvalidArgument");

        await Assert.ThrowsAsync<RpcException>(async () => await Daemon.Runtime.CheckpointPodAsync(new CheckpointPodRequest()));

        Assert.Equal(before + 1, await ReadCounterAsync(http, method, "InvalidArgument"));
    }

    private static async Task<double> ReadCounterAsync(HttpClient http, string method, string code)
    {
        var text = await http.GetStringAsync("/metrics");
        var match = Regex.Match(text,
            $@"^berth_grpc_requests_total\{{method=""{Regex.Escape(method)}"",code=""{code}""\}} (\S+)$",
            RegexOptions.Multiline);
        return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }
}
