using k8s.Models;

namespace Berth.Cli.Pods;

/// <summary>One container berth play keeps an eye on: its spec, the attempt running now and the one before.</summary>
internal sealed class PlayedContainer(V1Container spec, string field, bool sidecar)
{
    public V1Container Spec { get; } = spec;

    public string Field { get; } = field;

    /// <summary>An init container with <c>restartPolicy: Always</c>: restarted like an app container.</summary>
    public bool Sidecar { get; } = sidecar;

    public string Id { get; set; } = "";

    public int Attempt { get; set; }

    public string? PreviousId { get; set; }

    public int? ExitCode { get; set; }

    public DateTime? RestartAt { get; set; }

    public TimeSpan Backoff { get; set; } = PodRunner.InitialBackoff;
}

/// <summary>A pod berth play started: its sandbox and what runs in it.</summary>
internal sealed record PlayedPod(PodTranslator Pod, string SandboxId, PodVolumes Volumes, string? PodIp, List<PlayedContainer> Containers)
{
    public string RestartPolicy => Pod.Pod.Spec.RestartPolicy ?? "Always";
}

/// <summary>The pod ran and failed (an init container under restartPolicy Never): it is left for inspection.</summary>
internal sealed class PodFailedException(string message) : Exception(message);
