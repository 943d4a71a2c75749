using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// Objects for the fuzzer to aim at: a pod with a running container, and enough pods and containers that a one-letter
/// ID prefix names several of each. Requests start from baselines that work, so each hostile field is what fails.
/// </summary>
public sealed class FuzzTargets : IAsyncLifetime
{
    public ContainerTestBed Bed { get; } = new();
    public string PodId { get; private set; } = "";
    public string ContainerId { get; private set; } = "";
    public PodSandboxConfig Pod { get; private set; } = new();
    public string AmbiguousPodPrefix { get; private set; } = "";
    public string AmbiguousContainerPrefix { get; private set; } = "";

    public async Task InitializeAsync()
    {
        await Bed.InitializeAsync();
        Pod = Bed.Pod("fuzz", hostNetwork: true);
        PodId = await Bed.RunPodAsync(Pod);
        ContainerId = await Bed.RunAsync(PodId, Pod, Bed.Container("target", "sleep", "3600"));
        // Seventeen more of each: two IDs among eighteen share a first hex digit.
        var pods = new List<string> { PodId };
        var containers = new List<string> { ContainerId };
        for (var i = 0; i < 17; i++)
        {
            pods.Add(await Bed.RunPodAsync(Bed.Pod($"fuzz-{i}", hostNetwork: true)));
            containers.Add(await Bed.CreateAsync(PodId, Pod, Bed.Container($"idle-{i}", "sleep", "3600")));
        }
        AmbiguousPodPrefix = pods.GroupBy(id => id[..1]).First(g => g.Count() > 1).Key;
        AmbiguousContainerPrefix = containers.GroupBy(id => id[..1]).First(g => g.Count() > 1).Key;
    }

    public async Task DisposeAsync() => await Bed.DisposeAsync();
}

/// <summary>
/// Every RPC with each field in turn made hostile (empty, NUL bytes, "..", 100,000 characters, absurd numbers, unknown
/// enum values, ambiguous ID prefixes). Each answer is a precise status with a message, never Internal or Unknown;
/// a refusal creates nothing; berthd serves on.
/// </summary>
public sealed class HostileRequestTests(FuzzTargets targets, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<FuzzTargets>
{
    private static readonly StatusCode[] Precise =
    [
        StatusCode.OK, StatusCode.InvalidArgument, StatusCode.NotFound, StatusCode.FailedPrecondition, StatusCode.AlreadyExists,
        StatusCode.ResourceExhausted, StatusCode.OutOfRange,
    ];

    public static TheoryData<string> Methods()
    {
        var data = new TheoryData<string>();
        foreach (var method in Berth.Cri.V1.RuntimeService.Descriptor.Methods.Concat(Berth.Cri.V1.ImageService.Descriptor.Methods))
            data.Add($"{method.Service.Name}/{method.Name}");
        return data;
    }

    private ContainerTestBed Bed => targets.Bed;

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task Every_field_made_hostile_gets_a_precise_status_and_creates_nothing(string name)
    {
        var method = Berth.Cri.V1.RuntimeService.Descriptor.Methods.Concat(Berth.Cri.V1.ImageService.Descriptor.Methods)
            .Single(m => $"{m.Service.Name}/{m.Name}" == name);
        var invoker = Bed.Daemon.Channel.CreateCallInvoker();
        string[] hostile =
        [
            "", "a\0b", "../../../../../../etc/shadow", new string('x', 100_000), targets.AmbiguousPodPrefix, targets.AmbiguousContainerPrefix,
        ];
        var before = await WorldAsync();
        var failures = new List<string>();
        var calls = 0;
        foreach (var variant in RequestFuzzer.Variants(Baseline(method), hostile))
        {
            calls++;
            var (code, detail) = await CallAsync(invoker, method, variant.Request);
            var where = $"{method.Name} {variant.Field}={variant.Value}";
            if (!Allowed(method, code)) failures.Add($"{where}: {code} {Cut(detail)}");
            else if (code != StatusCode.OK && detail.Length == 0) failures.Add($"{where}: {code} with no message");
            else if (code == StatusCode.InvalidArgument && !NamesField(detail, variant.Field)) failures.Add($"{where}: InvalidArgument that names no field: {Cut(detail)}");
            if (code == StatusCode.OK) await RemoveNewAsync(before);
            else if (await WorldAsync() is var after && after != before) failures.Add($"{where}: refused ({code}) but left {after} (was {before})");
            if (Bed.Daemon.HasExited) throw new InvalidOperationException($"berthd died at {where}:\n{Bed.Daemon.Output[^4000..]}");
        }
        output.WriteLine($"{name}: {calls} hostile requests");
        await Bed.Daemon.Runtime.VersionAsync(new VersionRequest());
        Assert.True(failures.Count == 0, $"{failures.Count} of {calls} answers were not precise:\n{string.Join('\n', failures.Take(40))}");
    }

    private static bool Allowed(MethodDescriptor method, StatusCode code) =>
        Precise.Contains(code)
        // Short names go to docker.io, which the test bed points at a closed local port; the plain registry takes any credentials.
        || code is StatusCode.Unavailable or StatusCode.Unauthenticated && method.Name == "PullImage"
        // An event stream never ends on its own: the deadline ends it.
        || code == StatusCode.DeadlineExceeded && method.Name == "GetContainerEvents";

    /// <summary>A refusal for bad input says which field: one of the names on the mutated field's path.</summary>
    private static bool NamesField(string detail, string path) =>
        path.Split('.').Any(part => detail.Contains(part, StringComparison.Ordinal));

    private static string Cut(string detail) => detail.Length > 300 ? detail[..300] + "…" : detail;

    private static async Task<(StatusCode Code, string Detail)> CallAsync(CallInvoker invoker, MethodDescriptor method, IMessage request)
    {
        var seconds = method.Name == "GetContainerEvents" ? 1 : 30;
        try
        {
            await RequestFuzzer.CallAsync(invoker, method, request, DateTime.UtcNow.AddSeconds(seconds));
            return (StatusCode.OK, "");
        }
        catch (RpcException e)
        {
            return (e.StatusCode, e.Status.Detail);
        }
    }

    private sealed record World(string Pods, string Containers, string Images)
    {
        public override string ToString() => $"{Pods.Count(c => c == ',')} pods, {Containers.Count(c => c == ',')} containers, {Images.Count(c => c == ',')} images";
    }

    private async Task<World> WorldAsync()
    {
        var pods = (await Bed.Daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items.Select(p => p.Id + ":" + p.State).Order();
        var containers = (await Bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers.Select(c => c.Id + ":" + c.State).Order();
        var images = (await Bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images.Select(i => i.Id + ":" + string.Join(';', i.RepoTags)).Order();
        return new World(string.Concat(pods.Select(p => p + ",")), string.Concat(containers.Select(c => c + ",")), string.Concat(images.Select(i => i + ",")));
    }

    /// <summary>An accepted request may make a pod or a container: it goes again, so the next variant meets the same world.</summary>
    private async Task RemoveNewAsync(World before)
    {
        foreach (var container in (await Bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers)
        {
            if (!before.Containers.Contains(container.Id, StringComparison.Ordinal))
                await Bed.Daemon.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = container.Id });
        }
        foreach (var pod in (await Bed.Daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items)
        {
            if (!before.Pods.Contains(pod.Id, StringComparison.Ordinal)) await Bed.RemovePodAsync(pod.Id);
        }
    }

    /// <summary>A request that works, so that what fails is the one hostile field.</summary>
    private IMessage Baseline(MethodDescriptor method)
    {
        var container = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = "fuzzed" },
            Image = new ImageSpec { Image = Bed.Image },
            Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources(), SecurityContext = new LinuxContainerSecurityContext() },
        };
        container.Command.Add("true");
        var exec = new ExecSyncRequest { ContainerId = targets.ContainerId, Timeout = 5 };
        exec.Cmd.Add("true");
        var streamExec = new ExecRequest { ContainerId = targets.ContainerId, Stdout = true };
        streamExec.Cmd.Add("true");
        var portForward = new PortForwardRequest { PodSandboxId = targets.PodId };
        portForward.Port.Add(80);
        return method.Name switch
        {
            "RunPodSandbox" => new RunPodSandboxRequest { Config = Bed.Pod("fuzzed", hostNetwork: true) },
            "CreateContainer" => new CreateContainerRequest { PodSandboxId = targets.PodId, Config = container, SandboxConfig = targets.Pod },
            "PodSandboxStatus" => new PodSandboxStatusRequest { PodSandboxId = targets.PodId },
            "ContainerStatus" => new ContainerStatusRequest { ContainerId = targets.ContainerId },
            "ContainerStats" => new ContainerStatsRequest { ContainerId = targets.ContainerId },
            "PodSandboxStats" => new PodSandboxStatsRequest { PodSandboxId = targets.PodId },
            "UpdateContainerResources" => new UpdateContainerResourcesRequest { ContainerId = targets.ContainerId, Linux = new LinuxContainerResources() },
            "ReopenContainerLog" => new ReopenContainerLogRequest { ContainerId = targets.ContainerId },
            "ExecSync" => exec,
            "Exec" => streamExec,
            "Attach" => new AttachRequest { ContainerId = targets.ContainerId, Stdout = true },
            "PortForward" => portForward,
            "ImageStatus" => new ImageStatusRequest { Image = new ImageSpec { Image = Bed.Image } },
            "PullImage" => new PullImageRequest { Image = new ImageSpec { Image = Bed.Image } },
            "UpdatePodSandboxResources" => new UpdatePodSandboxResourcesRequest { PodSandboxId = targets.PodId },
            // Checkpoints into the daemon's own directory (refused on this kernel, where CRIU cannot run, before anything is written).
            "CheckpointContainer" => new CheckpointContainerRequest { ContainerId = targets.ContainerId, Location = Path.Combine(Bed.Daemon.Directory, "fuzz", "c.tar") },
            "CheckpointPod" => new CheckpointPodRequest { PodSandboxId = targets.PodId, OutputPath = Path.Combine(Bed.Daemon.Directory, "fuzz", "pod") },
            "RestorePod" => new RestorePodRequest { CheckpointPath = Path.Combine(Bed.Daemon.Directory, "no-checkpoint") },
            // A well-formed ID of nothing: stopping it is fine, so what fails is the timeout.
            "StopContainer" => new StopContainerRequest { ContainerId = new string('0', 64), Timeout = 1 },
            // Stop, Remove, Start and the like start empty: a working baseline would stop the fuzzer's own targets.
            _ => method.InputType.Parser.ParseFrom(ByteString.Empty),
        };
    }
}
