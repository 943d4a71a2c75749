using Berth.Runtime.Containers;
using Berth.Sandbox;
using Prometheus;

namespace Berth.CriServer.Observability;

/// <summary>
/// Runtime-level gauges for <c>/metrics</c>, counted from the stores when scraped: containers and pod sandboxes by
/// state, and shims alive. Pull durations are <c>berth_grpc_request_duration_seconds{method=".../PullImage"}</c>.
/// </summary>
internal sealed class RuntimeMetrics
{
    private static readonly ContainerState[] ContainerStates = Enum.GetValues<ContainerState>();
    private static readonly SandboxState[] SandboxStates = Enum.GetValues<SandboxState>();

    public RuntimeMetrics(CollectorRegistry registry, ContainerManager containers, SandboxManager sandboxes)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        var containerGauge = factory.CreateGauge("berth_containers", "Containers by state.", ["state"]);
        var sandboxGauge = factory.CreateGauge("berth_pod_sandboxes", "Pod sandboxes by state.", ["state"]);
        var shimGauge = factory.CreateGauge("berth_shims", "Container shims that are alive (containers created or running).");
        registry.AddBeforeCollectCallback(() =>
        {
            var byState = new int[ContainerStates.Length];
            foreach (var record in containers.List()) byState[(int)record.State]++;
            foreach (var state in ContainerStates) containerGauge.WithLabels(state.ToString().ToLowerInvariant()).Set(byState[(int)state]);
            shimGauge.Set(byState[(int)ContainerState.Created] + byState[(int)ContainerState.Running]);
            var pods = new int[SandboxStates.Length];
            foreach (var record in sandboxes.List()) pods[(int)record.State]++;
            foreach (var state in SandboxStates) sandboxGauge.WithLabels(state.ToString().ToLowerInvariant()).Set(pods[(int)state]);
        });
    }
}
