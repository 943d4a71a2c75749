using Berth.Nri.Api;

namespace Berth.Nri.Adaptation;

/// <summary>What NRI asks of the runtime it serves, outside the events the runtime sends it.</summary>
public interface INriRuntime
{
    /// <summary>Every pod and container there is, for a plugin's Synchronize.</summary>
    Task<(IReadOnlyList<PodSandbox> Pods, IReadOnlyList<Container> Containers)> SnapshotAsync(CancellationToken cancellationToken);

    /// <summary>Applies resource updates to existing containers; returns those that failed.</summary>
    Task<IReadOnlyList<ContainerUpdate>> UpdateContainersAsync(IReadOnlyList<ContainerUpdate> updates, CancellationToken cancellationToken);

    /// <summary>Stops containers a plugin evicts.</summary>
    Task EvictContainersAsync(IReadOnlyList<ContainerEviction> evictions, CancellationToken cancellationToken);
}

/// <summary>NRI refused a pod or container: a plugin failed it, two plugins claimed one field, or a required plugin is missing.</summary>
public sealed class NriException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A plugin as berthd reports it (Status verbose info, <c>berth nri</c>).</summary>
public sealed record NriPluginInfo(string Index, string Name, string Kind, int Pid, IReadOnlyList<string> Events);
