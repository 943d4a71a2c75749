using System.Security.Cryptography;
using System.Text;
using k8s.Models;
using Berth.Cri.V1;

namespace Berth.Cli.Pods;

/// <summary>
/// Runs a Pod as the kubelet would on this node: images by pull policy, volumes, the sandbox, init containers one at a
/// time to completion, then the app containers; afterwards restarts by restartPolicy with the kubelet's back-off.
/// </summary>
internal sealed class PodRunner(CriConnection cri, string stateDirectory, TextWriter log)
{
    public static readonly TimeSpan InitialBackoff = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(5);

    private readonly ImagePuller _images = new(cri);

    /// <summary>A manifest without a uid gets one derived from namespace and name, so --down finds its directories again.</summary>
    public static void AssignUid(V1Pod pod)
    {
        if (!string.IsNullOrEmpty(pod.Metadata.Uid)) return;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"berth-play/{pod.Metadata.NamespaceProperty ?? "default"}/{pod.Metadata.Name}"));
        hash[6] = (byte)(hash[6] & 0x0F | 0x50);
        hash[8] = (byte)(hash[8] & 0x3F | 0x80);
        pod.Metadata.Uid = new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
    }

    public PodVolumes VolumesOf(PodTranslator pod) => new(Path.Combine(stateDirectory, "pods", pod.Uid));

    public async Task<PlayedPod> StartAsync(PodTranslator pod, CancellationToken cancellationToken)
    {
        if (await PodTeardown.FindAsync(cri, pod, cancellationToken) is { Count: > 0 })
            throw new CliException($"pod {pod.Namespace}/{pod.Name} is already running (berth play --down removes it)");
        var spec = pod.Pod.Spec;
        var images = await PullAsync(spec, cancellationToken);
        var volumes = VolumesOf(pod);
        string? sandboxId = null;
        try
        {
            volumes.Prepare(spec);
            Directory.CreateDirectory(pod.LogDirectory);
            var userNamespace = spec.HostUsers == false ? await UserNamespaceRanges.AllocateAsync(cri, cancellationToken) : null;
            var sandbox = pod.Sandbox(userNamespace);
            sandboxId = (await cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = sandbox, RuntimeHandler = spec.RuntimeClassName ?? "" },
                cancellationToken: cancellationToken)).PodSandboxId;
            var status = await cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = sandboxId }, deadline: cri.Deadline, cancellationToken: cancellationToken);
            var played = new PlayedPod(pod, sandboxId, volumes, status.Status.Network?.Ip is { Length: > 0 } ip ? ip : null, []);
            log.WriteLine($"pod {pod.Namespace}/{pod.Name}: sandbox {sandboxId[..13]}{(played.PodIp is null ? "" : $" at {played.PodIp}")}");
            var inits = spec.InitContainers ?? [];
            for (var i = 0; i < inits.Count; i++)
            {
                var init = new PlayedContainer(inits[i], $"spec.initContainers[{i}]", sidecar: inits[i].RestartPolicy == "Always");
                played.Containers.Add(init);
                if (init.Sidecar) await StartContainerAsync(played, init, sandbox, images, cancellationToken);
                else await RunInitAsync(played, init, sandbox, images, cancellationToken);
            }
            for (var i = 0; i < spec.Containers.Count; i++)
            {
                var app = new PlayedContainer(spec.Containers[i], $"spec.containers[{i}]", sidecar: false);
                played.Containers.Add(app);
                await StartContainerAsync(played, app, sandbox, images, cancellationToken);
            }
            return played;
        }
        catch (PodFailedException)
        {
            throw;
        }
        catch (Exception failure)
        {
            // Nothing half-made: what failed to start is taken down again, sandbox, volumes and logs. A failing
            // take-down is reported beside the failure, never in its place.
            try
            {
                await PodTeardown.RemoveAsync(cri, pod, volumes, sandboxId, CancellationToken.None);
            }
            catch (Exception cleanup) when (cleanup is Grpc.Core.RpcException or IOException or UnauthorizedAccessException)
            {
                log.WriteLine($"pod {pod.Namespace}/{pod.Name}: taking down after \"{failure.Message}\" failed too: {cleanup.Message}");
            }
            throw;
        }
    }

    private async Task<Dictionary<string, Image>> PullAsync(V1PodSpec spec, CancellationToken cancellationToken)
    {
        var images = new Dictionary<string, Image>();
        foreach (var (container, field) in AllContainers(spec))
        {
            var image = await _images.EnsureAsync(container.Image, container.ImagePullPolicy, $"{field}.image", cancellationToken);
            PodSecurity.CheckNonRoot(spec, container, field, image);
            images[field] = image;
        }
        var volumes = spec.Volumes ?? [];
        for (var i = 0; i < volumes.Count; i++)
        {
            if (volumes[i].Image is { } source)
                await _images.EnsureAsync(source.Reference, source.PullPolicy, $"spec.volumes[{i}].image.reference", cancellationToken);
        }
        return images;
    }

    private static IEnumerable<(V1Container Container, string Field)> AllContainers(V1PodSpec spec) =>
        (spec.InitContainers ?? []).Select((c, i) => (c, $"spec.initContainers[{i}]"))
        .Concat(spec.Containers.Select((c, i) => (c, $"spec.containers[{i}]")));

    private async Task StartContainerAsync(PlayedPod pod, PlayedContainer container, PodSandboxConfig sandbox, IReadOnlyDictionary<string, Image> images, CancellationToken cancellationToken)
    {
        var config = pod.Pod.Container(container.Spec, container.Field, container.Attempt, images[container.Field].Id, pod.Volumes, pod.PodIp);
        var id = (await cri.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod.SandboxId, Config = config, SandboxConfig = sandbox },
            cancellationToken: cancellationToken)).ContainerId;
        container.PreviousId = container.Id.Length == 0 ? null : container.Id;
        container.Id = id;
        container.ExitCode = null;
        await cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, cancellationToken: cancellationToken);
        log.WriteLine($"pod {pod.Pod.Namespace}/{pod.Pod.Name}: started {container.Spec.Name} ({id[..13]}, attempt {container.Attempt})");
    }

    /// <summary>An init container must exit 0 before the next starts; it is retried unless the pod's policy is Never.</summary>
    private async Task RunInitAsync(PlayedPod pod, PlayedContainer init, PodSandboxConfig sandbox, IReadOnlyDictionary<string, Image> images, CancellationToken cancellationToken)
    {
        while (true)
        {
            await StartContainerAsync(pod, init, sandbox, images, cancellationToken);
            var exitCode = await WaitExitAsync(init.Id, cancellationToken);
            if (exitCode == 0) return;
            if (pod.RestartPolicy == "Never")
                throw new PodFailedException($"pod {pod.Pod.Namespace}/{pod.Pod.Name}: init container {init.Spec.Name} exited with {exitCode}; restartPolicy Never, so the pod failed (berth logs {init.Id[..13]})");
            log.WriteLine($"pod {pod.Pod.Namespace}/{pod.Pod.Name}: init container {init.Spec.Name} exited with {exitCode}, retrying in {init.Backoff.TotalSeconds:F0} s");
            await Task.Delay(init.Backoff, cancellationToken);
            init.Backoff = Next(init.Backoff);
            await RetireAsync(init.PreviousId, cancellationToken);
            init.Attempt++;
        }
    }

    private async Task<int> WaitExitAsync(string id, CancellationToken cancellationToken)
    {
        while (true)
        {
            var status = (await cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id }, deadline: cri.Deadline, cancellationToken: cancellationToken)).Status;
            if (status.State == ContainerState.ContainerExited) return status.ExitCode;
            await Task.Delay(250, cancellationToken);
        }
    }

    /// <summary>
    /// Applies restartPolicy until nothing will run again (then 0 when every app container succeeded) or the caller
    /// cancels. As the kubelet keeps one dead attempt for <c>logs --previous</c>, so does this.
    /// </summary>
    public async Task<int> SuperviseAsync(IReadOnlyList<PlayedPod> pods, CancellationToken cancellationToken)
    {
        var sandboxes = pods.ToDictionary(p => p, p => p.Pod.Sandbox(null));
        while (true)
        {
            var live = false;
            foreach (var pod in pods)
            {
                var apps = false;
                foreach (var app in pod.Containers.Where(c => !IsInit(pod, c)))
                    apps |= await TendAsync(pod, app, sandboxes[pod], cancellationToken);
                // Sidecars live as long as the pod's app containers, as the kubelet ends them.
                foreach (var sidecar in pod.Containers.Where(c => c.Sidecar))
                {
                    if (apps) await TendAsync(pod, sidecar, sandboxes[pod], cancellationToken);
                    else if (sidecar.ExitCode is null && sidecar.RestartAt is null) await StopAsync(pod, sidecar, cancellationToken);
                }
                live |= apps;
            }
            if (!live) return pods.All(p => p.Containers.Where(c => !IsInit(p, c)).All(c => c.ExitCode == 0)) ? 0 : 1;
            await Task.Delay(500, cancellationToken);
        }
    }

    private async Task StopAsync(PlayedPod pod, PlayedContainer container, CancellationToken cancellationToken)
    {
        await cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = container.Id, Timeout = pod.Pod.GracePeriod }, cancellationToken: cancellationToken);
        container.ExitCode = -1;
    }

    private static bool IsInit(PlayedPod pod, PlayedContainer container) => pod.Pod.Pod.Spec.InitContainers?.Contains(container.Spec) == true;

    /// <summary>One look at a container: whether it runs or will run again.</summary>
    private async Task<bool> TendAsync(PlayedPod pod, PlayedContainer container, PodSandboxConfig sandbox, CancellationToken cancellationToken)
    {
        if (container.RestartAt is { } at)
        {
            if (DateTime.UtcNow < at) return true;
            container.RestartAt = null;
            await RetireAsync(container.PreviousId, cancellationToken);
            container.Attempt++;
            var images = new Dictionary<string, Image> { [container.Field] = await _images.EnsureAsync(container.Spec.Image, container.Spec.ImagePullPolicy, container.Field, cancellationToken) };
            await StartContainerAsync(pod, container, sandbox, images, cancellationToken);
            return true;
        }
        if (container.ExitCode is not null) return false;
        var status = (await cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = container.Id }, deadline: cri.Deadline, cancellationToken: cancellationToken)).Status;
        if (status.State != ContainerState.ContainerExited) return true;
        container.ExitCode = status.ExitCode;
        var restart = container.Sidecar || pod.RestartPolicy == "Always" || pod.RestartPolicy == "OnFailure" && status.ExitCode != 0;
        log.WriteLine($"pod {pod.Pod.Namespace}/{pod.Pod.Name}: {container.Spec.Name} exited with {status.ExitCode}{(restart ? $", restarting in {container.Backoff.TotalSeconds:F0} s" : "")}");
        if (!restart) return false;
        container.RestartAt = DateTime.UtcNow + container.Backoff;
        container.Backoff = Next(container.Backoff);
        return true;
    }

    private async Task RetireAsync(string? id, CancellationToken cancellationToken)
    {
        if (id is null) return;
        await cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: cri.Deadline, cancellationToken: cancellationToken);
    }

    private static TimeSpan Next(TimeSpan backoff) => backoff * 2 > MaxBackoff ? MaxBackoff : backoff * 2;
}
