using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Berth.E2E.Tests.Otlp;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// OpenTelemetry tracing through the socket: a pod's start reaches a test OTLP collector as RPC spans with their
/// phases nested under them, inside the caller's W3C trace; both OTLP transports; and with tracing off, no exporter.
/// </summary>
public sealed class TracingTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private static readonly TimeSpan ExportWait = TimeSpan.FromSeconds(30);

    private async Task<BerthDaemon> DaemonAsync(string tracing)
    {
        var daemon = await BerthDaemon.StartAsync(new DaemonOptions { ExtraConfig = $"[tracing]\n{tracing}" });
        await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Image } });
        return daemon;
    }

    /// <summary>W3C trace context as kubelet's gRPC instrumentation sends it.</summary>
    private static Metadata TraceContext(string traceId, string spanId, bool sampled) =>
        new() { { "traceparent", $"00-{traceId}-{spanId}-{(sampled ? "01" : "00")}" }, { "tracestate", "kubelet=test" } };

    private static string RandomHex(int bytes) => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(bytes));

    /// <summary>The thread OpenTelemetry's batch exporter runs on, by the 15 bytes of its name the kernel keeps.</summary>
    private static bool HasExporterThread(int pid) =>
        Directory.EnumerateDirectories($"/proc/{pid}/task").Any(t => File.ReadAllText(Path.Combine(t, "comm")).StartsWith("OpenTelemetry", StringComparison.Ordinal));

    [Fact]
    public async Task A_pods_start_is_traced_with_its_phases_inside_the_callers_trace()
    {
        await using var collector = await OtlpReceiver.StartAsync();
        await using var daemon = await DaemonAsync($"endpoint = \"{collector.HttpEndpoint}\"\nservice_name = \"berthd-test\"\n");
        using var network = TestNetwork.Create(daemon);
        Assert.True(HasExporterThread(daemon.Pid), "tracing is on, but berthd has no exporter thread");
        var (traceId, kubeletSpan) = (RandomHex(16), RandomHex(8));
        var context = TraceContext(traceId, kubeletSpan, sampled: true);

        var pod = bed.Pod("traced");
        var podId = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod }, context)).PodSandboxId;
        var containerId = (await daemon.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = podId, Config = bed.Container("app", "sleep", "600"), SandboxConfig = pod }, context)).ContainerId;
        await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = containerId }, context);
        // A call the caller got wrong: its span says so.
        var missing = await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = "no-such-container" }, context));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        var spans = await collector.WaitForAsync(s => s.Any(x => x.Name.EndsWith("/ContainerStatus", StringComparison.Ordinal)) && s.Any(x => x.Name == "runtime.start"), ExportWait);
        ReceivedSpan Rpc(string method) => Assert.Single(spans, s => s.Name == $"runtime.v1.RuntimeService/{method}");
        List<ReceivedSpan> Children(ReceivedSpan parent) => [.. spans.Where(s => s.ParentSpanId == parent.SpanId).OrderBy(s => s.Start)];

        foreach (var method in new[] { "RunPodSandbox", "CreateContainer", "StartContainer", "ContainerStatus" })
        {
            var rpc = Rpc(method);
            Assert.Equal((traceId, kubeletSpan, Span.Types.SpanKind.Server, "berthd-test"), (rpc.TraceId, rpc.ParentSpanId, rpc.Kind, rpc.Service));
            Assert.Equal(("grpc", "runtime.v1.RuntimeService", method), (rpc.Attributes["rpc.system"], rpc.Attributes["rpc.service"], rpc.Attributes["rpc.method"]));
        }
        Assert.Equal("0", Rpc("RunPodSandbox").Attributes["rpc.grpc.status_code"]);
        Assert.Equal(("5", Otlp.Status.Types.StatusCode.Error), (Rpc("ContainerStatus").Attributes["rpc.grpc.status_code"], Rpc("ContainerStatus").StatusCode));
        Assert.Contains("no-such-container", Rpc("ContainerStatus").StatusMessage, StringComparison.Ordinal);

        // The sandbox's phases in order, and each CNI plugin's ADD under the network phase.
        var sandbox = Children(Rpc("RunPodSandbox"));
        Assert.Equal(["sandbox.namespaces", "sandbox.network", "sandbox.shm", "sandbox.files"], sandbox.Select(s => s.Name));
        var cni = Assert.Single(Children(sandbox[1]));
        Assert.Equal(("cni.add", "bridge", "berth-test", "Berth.Cni"), (cni.Name, cni.Attributes["cni.plugin"], cni.Attributes["cni.network"], cni.Scope));

        var create = Children(Rpc("CreateContainer"));
        // NRI is on by default, so its adjustment is a phase even with no plugin connected.
        Assert.Equal(["container.rootfs", "container.spec", "container.nri", "container.bundle", "container.shim"], create.Select(s => s.Name));
        var runtimeCreate = Assert.Single(Children(create[^1]));
        Assert.Equal("runtime.create", runtimeCreate.Name);
        Assert.True(runtimeCreate.Start >= create[^1].Start && runtimeCreate.End <= create[^1].End.AddMilliseconds(1),
            $"runtime.create ({runtimeCreate.Start:O}-{runtimeCreate.End:O}) is not inside container.shim ({create[^1].Start:O}-{create[^1].End:O})");
        Assert.Equal(["runtime.start"], Children(Rpc("StartContainer")).Select(s => s.Name));
        Assert.All(spans.Where(s => s.Name.Contains('.', StringComparison.Ordinal) && !s.Name.StartsWith("runtime.v1", StringComparison.Ordinal)),
            s => Assert.Equal(traceId, s.TraceId));

        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
    }

    [Fact]
    public async Task Spans_go_over_otlp_grpc_and_the_callers_sampling_decision_is_followed()
    {
        await using var collector = await OtlpReceiver.StartAsync();
        // Nothing begun here is kept, so only calls whose caller sampled them are traced.
        await using var daemon = await DaemonAsync($"endpoint = \"{collector.GrpcEndpoint}\"\nprotocol = \"grpc\"\nsampling_ratio = 0\n");
        var (sampled, unsampled) = (RandomHex(16), RandomHex(16));

        await daemon.Runtime.VersionAsync(new VersionRequest());
        await daemon.Runtime.VersionAsync(new VersionRequest(), TraceContext(unsampled, RandomHex(8), sampled: false));
        await daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), TraceContext(sampled, RandomHex(8), sampled: true));

        await collector.WaitForAsync(s => s.Any(x => x.Name == "runtime.v1.RuntimeService/ListPodSandbox"), ExportWait);
        // Given time for anything else queued to arrive, only the sampled call is there.
        await Task.Delay(TimeSpan.FromSeconds(6));
        var span = Assert.Single(collector.Spans);
        Assert.Equal((sampled, "berthd"), (span.TraceId, span.Service));
    }

    [Fact]
    public async Task With_tracing_off_no_exporter_runs_and_nothing_is_sent()
    {
        await using var collector = await OtlpReceiver.StartAsync();
        // The collector runs, but the config names no endpoint (as the default does not).
        await using var daemon = await DaemonAsync("");
        using var network = TestNetwork.Create(daemon);
        var pod = bed.Pod("untraced");
        var context = TraceContext(RandomHex(16), RandomHex(8), sampled: true);
        var podId = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod }, context)).PodSandboxId;
        var id = (await daemon.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = podId, Config = bed.Container("app", "sleep", "600"), SandboxConfig = pod }, context)).ContainerId;
        await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, context);

        Assert.False(HasExporterThread(daemon.Pid), "tracing is off, but berthd runs an OpenTelemetry exporter thread");
        var status = await daemon.Runtime.StatusAsync(new StatusRequest { Verbose = true });
        Assert.Contains("\"enabled\":false", status.Info["tracing"], StringComparison.Ordinal);
        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        Assert.Equal(0, collector.Requests);
    }
}
