using Berth.Runtime.Spec;

namespace Berth.Runtime.Containers;

/// <summary>
/// Changes a container's OCI spec after Berth built it and before the runtime creates the container (berthd's NRI
/// plugins). What it throws fails the create, which is rolled back: a <see cref="ContainerException"/> keeps its
/// meaning, anything else is the node's failure.
/// </summary>
public interface IContainerSpecAdjuster
{
    Task<SpecAdjustment> AdjustAsync(ContainerRecord container, OciSpec spec, CancellationToken cancellationToken);
}

/// <summary>The adjusted spec, and CDI devices to inject on top of it (resolved as the request's own are).</summary>
public sealed record SpecAdjustment(OciSpec Spec, IReadOnlyList<string> CdiDevices);
