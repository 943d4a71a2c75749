using Berth.Runtime.Containers;
using Berth.Sandbox;
using Prometheus;

namespace Berth.CriServer.Observability;

/// <summary>
/// Runtime-level gauges for <c>/metrics</c>, counted from the stores when scraped: containers and pod sandboxes by
/// state, shims alive, and CDI device requests refused. Pull durations are <c>berth_grpc_request_duration_seconds{method=".../PullImage"}</c>.
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
        var cdiRefused = factory.CreateCounter("berth_cdi_device_requests_refused_total",
            "CreateContainer calls refused for a CDI device: unresolvable (unknown, in conflict, malformed) or host (the node cannot give it).", ["reason"]);
        registry.AddBeforeCollectCallback(() =>
        {
            var byState = new int[ContainerStates.Length];
            foreach (var record in containers.List()) byState[(int)record.State]++;
            foreach (var state in ContainerStates) containerGauge.WithLabels(state.ToString().ToLowerInvariant()).Set(byState[(int)state]);
            shimGauge.Set(byState[(int)ContainerState.Created] + byState[(int)ContainerState.Running]);
            var pods = new int[SandboxStates.Length];
            foreach (var record in sandboxes.List()) pods[(int)record.State]++;
            foreach (var state in SandboxStates) sandboxGauge.WithLabels(state.ToString().ToLowerInvariant()).Set(pods[(int)state]);
            // Counted by the registry as they happen; a counter only moves up to them.
            cdiRefused.WithLabels("unresolvable").IncTo(containers.Devices.RefusedUnresolvable);
            cdiRefused.WithLabels("host").IncTo(containers.Devices.RefusedByHost);
        });
    }
}
