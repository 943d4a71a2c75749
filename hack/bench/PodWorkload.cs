using System.Diagnostics;
using Berth.Cri.V1;
using Google.Protobuf;

namespace Berth.Bench;

/// <summary>How long one pod took to start, RunPodSandbox through its last StartContainer (ms).</summary>
internal sealed record PodStart(string PodId, double RunPodSandbox, IReadOnlyList<double> CreateStart, double Whole);

/// <summary>
/// A pod as kubelet sends it for a BestEffort Deployment replica: its own network namespace on the CNI bridge, a pod
/// cgroup, CRI logs under its log directory, an app and a sidecar container (busybox sleep), each created then
/// started in turn after the sandbox, with the PodSandboxStatus call kubelet makes for the pod IP in between.
/// </summary>
internal sealed class PodWorkload(RuntimeService.RuntimeServiceClient runtime, string image, string cgroupRoot, string logRoot)
{
    private static readonly string[] Containers = ["app", "sidecar"];

    // The pod cgroup of each pod started here: kubelet's to make and remove, not the runtime's.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _podCgroups = new(StringComparer.Ordinal);

    public async Task<PodStart> StartAsync(string name, CancellationToken cancellationToken = default)
    {
        var config = SandboxConfig(name);
        Directory.CreateDirectory(config.LogDirectory);
        var whole = Stopwatch.StartNew();
        var podId = (await runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config }, cancellationToken: cancellationToken)).PodSandboxId;
        var run = whole.Elapsed.TotalMilliseconds;
        _podCgroups[podId] = config.Linux.CgroupParent;
        var status = await runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = podId }, cancellationToken: cancellationToken);
        if (string.IsNullOrEmpty(status.Status.Network?.Ip)) throw new InvalidOperationException($"pod {name} has no IP");
        var createStart = new List<double>();
        for (var i = 0; i < Containers.Length; i++)
        {
            var watch = Stopwatch.StartNew();
            var id = (await runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = ContainerConfig(name, Containers[i], i), SandboxConfig = config }, cancellationToken: cancellationToken)).ContainerId;
            await runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, cancellationToken: cancellationToken);
            createStart.Add(watch.Elapsed.TotalMilliseconds);
        }
        return new PodStart(podId, run, createStart, whole.Elapsed.TotalMilliseconds);
    }

    /// <summary>Stops and removes a pod as kubelet does on deletion: containers (grace 0), then the sandbox, then the pod cgroup.</summary>
    public async Task RemoveAsync(string podId, CancellationToken cancellationToken = default)
    {
        var containers = await runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = podId } }, cancellationToken: cancellationToken);
        foreach (var container in containers.Containers)
            await runtime.StopContainerAsync(new StopContainerRequest { ContainerId = container.Id, Timeout = 0 }, cancellationToken: cancellationToken);
        foreach (var container in containers.Containers)
            await runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = container.Id }, cancellationToken: cancellationToken);
        await runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId }, cancellationToken: cancellationToken);
        await runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId }, cancellationToken: cancellationToken);
        if (_podCgroups.TryRemove(podId, out var cgroup)) BenchCgroups.Remove(cgroup);
    }

    private PodSandboxConfig SandboxConfig(string name)
    {
        var uid = Guid.NewGuid().ToString();
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = "bench", Uid = uid },
            Hostname = name,
            LogDirectory = Path.Combine(logRoot, $"bench_{name}_{uid}"),
            DnsConfig = new DNSConfig { Servers = { "10.96.0.10" }, Searches = { "bench.svc.cluster.local", "svc.cluster.local", "cluster.local" }, Options = { "ndots:5" } },
            Labels = { ["io.kubernetes.pod.name"] = name, ["io.kubernetes.pod.namespace"] = "bench", ["io.kubernetes.pod.uid"] = uid, ["app"] = "bench" },
            Annotations = { ["kubernetes.io/config.source"] = "api" },
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = $"{cgroupRoot}/besteffort/pod{uid}",
                SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Pod, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod } },
            },
        };
        return config;
    }

    private ContainerConfig ContainerConfig(string pod, string name, int index)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = image },
            LogPath = $"{name}/0.log",
            Envs = { new KeyValue { Key = "POD_NAME", Value = ByteString.CopyFromUtf8(pod) }, new KeyValue { Key = "KUBERNETES_SERVICE_HOST", Value = ByteString.CopyFromUtf8("10.96.0.1") } },
            Labels = { ["io.kubernetes.container.name"] = name, ["io.kubernetes.pod.name"] = pod, ["io.kubernetes.pod.namespace"] = "bench" },
            Annotations = { ["io.kubernetes.container.restartCount"] = "0", ["io.kubernetes.container.terminationMessagePath"] = "/dev/termination-log" },
            Linux = new LinuxContainerConfig
            {
                // kubelet's BestEffort container: minimum shares, the highest OOM score.
                Resources = new LinuxContainerResources { CpuShares = 2, CpuPeriod = 100000, OomScoreAdj = 1000 },
                SecurityContext = new LinuxContainerSecurityContext { NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Pod, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod } },
            },
        };
        // The two sleep for different times so that each container's process can be told apart from the sandbox's.
        config.Command.AddRange(["/bin/busybox", "sleep", (3600 + index).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        return config;
    }
}
