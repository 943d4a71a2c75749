using System.Text.Json;
using Berth.Nri.Adaptation;
using Berth.Nri.Api;
using Berth.Runtime.Containers;
using Berth.Runtime.Spec;
using Berth.Sandbox;

namespace Berth.CriServer.Nri;

/// <summary>
/// berthd's pods and containers wired to NRI: what plugins learn at Synchronize and with each event, the spec
/// adjustments they make at CreateContainer, and the updates and evictions they ask for. Without NRI (disabled, or
/// no plugin and none required) every call returns at once.
/// </summary>
public sealed partial class NriBridge(SandboxManager sandboxes, ContainerManager containers, ILogger<NriBridge> logger) : INriRuntime, IContainerSpecAdjuster
{
    private NriAdaptation? _nri;

    /// <summary>A plugin is connected or required: events have someone to go to, so their data is worth gathering.</summary>
    public bool Active => _nri is { Idle: false };

    /// <summary>Set once at startup when [nri] is enabled.</summary>
    public NriAdaptation? Adaptation
    {
        get => _nri;
        set
        {
            _nri = value;
            containers.SpecAdjuster = value is null ? null : this;
        }
    }

    public Task<(IReadOnlyList<PodSandbox> Pods, IReadOnlyList<Container> Containers)> SnapshotAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<PodSandbox> pods = [.. sandboxes.List().Where(s => s.State == SandboxState.Ready).Select(NriMapper.Pod)];
        IReadOnlyList<Container> all = [.. containers.List()
            .Where(c => c.State is Runtime.Containers.ContainerState.Created or Runtime.Containers.ContainerState.Running)
            .Select(c => NriMapper.Container(c, ReadSpec(c)))];
        return Task.FromResult((pods, all));
    }

    public async Task<IReadOnlyList<ContainerUpdate>> UpdateContainersAsync(IReadOnlyList<ContainerUpdate> updates, CancellationToken cancellationToken)
    {
        var failed = new List<ContainerUpdate>();
        foreach (var update in updates)
        {
            try
            {
                var record = containers.Get(update.ContainerId) ?? throw new ContainerNotFoundException(update.ContainerId);
                await containers.UpdateResourcesAsync(record.Id, NriMapper.Resources(update.Linux?.Resources ?? new LinuxResources(), record.Resources), cancellationToken);
            }
            catch (ContainerException e)
            {
                LogUpdateFailed(logger, update.ContainerId, e.Message);
                failed.Add(update);
            }
        }
        return failed;
    }

    /// <summary>An evicted container is stopped at once, as a kill; kubelet then restarts it or not by its pod's policy.</summary>
    public async Task EvictContainersAsync(IReadOnlyList<ContainerEviction> evictions, CancellationToken cancellationToken)
    {
        foreach (var eviction in evictions)
        {
            LogEvicting(logger, eviction.ContainerId, eviction.Reason);
            try
            {
                await containers.StopAsync(eviction.ContainerId, TimeSpan.Zero, cancellationToken);
            }
            catch (ContainerException e)
            {
                LogUpdateFailed(logger, eviction.ContainerId, e.Message);
            }
        }
    }

    public async Task<SpecAdjustment> AdjustAsync(ContainerRecord container, OciSpec spec, CancellationToken cancellationToken)
    {
        if (_nri is not { Idle: false } nri || sandboxes.Get(container.PodId) is not { } sandbox) return new SpecAdjustment(spec, []);
        ContainerAdjustment? adjust;
        try
        {
            adjust = await nri.CreateContainerAsync(NriMapper.Pod(sandbox), NriMapper.Container(container, spec), cancellationToken);
        }
        catch (NriException e)
        {
            throw new ContainerPreconditionException(e.Message);
        }
        return adjust is null ? new SpecAdjustment(spec, []) : NriSpecAdjustment.Apply(spec, adjust);
    }

    /// <summary>RunPodSandbox: a plugin's error, or a required plugin missing, fails the pod (the caller rolls it back).</summary>
    public Task RunPodSandboxAsync(SandboxRecord sandbox, CancellationToken cancellationToken) =>
        _nri is { Idle: false } nri ? nri.RunPodSandboxAsync(NriMapper.Pod(sandbox), cancellationToken) : Task.CompletedTask;

    public Task StopPodSandboxAsync(SandboxRecord sandbox, CancellationToken cancellationToken) =>
        QuietlyAsync("StopPodSandbox", nri => nri.StopPodSandboxAsync(NriMapper.Pod(sandbox), cancellationToken));

    public Task RemovePodSandboxAsync(SandboxRecord sandbox, CancellationToken cancellationToken) =>
        QuietlyAsync("RemovePodSandbox", nri => nri.RemovePodSandboxAsync(NriMapper.Pod(sandbox), cancellationToken));

    public async Task UpdatePodSandboxAsync(SandboxRecord sandbox, ContainerResources? overhead, ContainerResources? resources, CancellationToken cancellationToken)
    {
        if (_nri is not { Idle: false } nri) return;
        var request = new UpdatePodSandboxRequest { Pod = NriMapper.Pod(sandbox) };
        if (overhead is not null) request.OverheadLinuxResources = NriMapper.Resources(overhead);
        if (resources is not null) request.LinuxResources = NriMapper.Resources(resources);
        await QuietlyAsync("UpdatePodSandbox", _ => nri.UpdatePodSandboxAsync(request, cancellationToken));
    }

    public Task PostUpdatePodSandboxAsync(SandboxRecord sandbox, CancellationToken cancellationToken) =>
        QuietlyAsync("PostUpdatePodSandbox", nri => nri.PostUpdatePodSandboxAsync(NriMapper.Pod(sandbox), cancellationToken));

    public Task PostCreateContainerAsync(string id, CancellationToken cancellationToken) =>
        ForContainerAsync("PostCreateContainer", id, (nri, pod, c) => nri.PostCreateContainerAsync(pod, c, cancellationToken));

    /// <summary>StartContainer: a plugin's error fails the start, as in containerd.</summary>
    public async Task StartContainerAsync(string id, CancellationToken cancellationToken)
    {
        if (_nri is not { Idle: false } nri || Resolve(id) is not var (pod, container)) return;
        try
        {
            await nri.StartContainerAsync(pod, container, cancellationToken);
        }
        catch (NriException e)
        {
            throw new ContainerPreconditionException(e.Message);
        }
    }

    public Task PostStartContainerAsync(string id, CancellationToken cancellationToken) =>
        ForContainerAsync("PostStartContainer", id, (nri, pod, c) => nri.PostStartContainerAsync(pod, c, cancellationToken));

    /// <summary>UpdateContainer: the resources to apply, as plugins changed them; a plugin's error fails the update.</summary>
    public async Task<ContainerResources> UpdateContainerAsync(string id, ContainerResources requested, CancellationToken cancellationToken)
    {
        if (_nri is not { Idle: false } nri || Resolve(id) is not var (pod, container)) return requested;
        try
        {
            var adjusted = await nri.UpdateContainerAsync(pod, container, NriMapper.Resources(requested), cancellationToken);
            return adjusted is null ? requested : NriMapper.Resources(adjusted, requested);
        }
        catch (NriException e)
        {
            throw new ContainerPreconditionException(e.Message);
        }
    }

    public Task PostUpdateContainerAsync(string id, CancellationToken cancellationToken) =>
        ForContainerAsync("PostUpdateContainer", id, (nri, pod, c) => nri.PostUpdateContainerAsync(pod, c, cancellationToken));

    public Task StopContainerAsync(string id, CancellationToken cancellationToken) =>
        ForContainerAsync("StopContainer", id, (nri, pod, c) => nri.StopContainerAsync(pod, c, cancellationToken));

    /// <summary>What a container's RemoveContainer event will carry, taken while it still exists.</summary>
    public (PodSandbox Pod, Container Container)? Capture(string id) => _nri is { Idle: false } ? Resolve(id) : null;

    public Task RemoveContainerAsync((PodSandbox Pod, Container Container)? captured, CancellationToken cancellationToken) => captured is var (pod, container)
        ? QuietlyAsync("RemoveContainer", nri => nri.RemoveContainerAsync(pod, container, cancellationToken))
        : Task.CompletedTask;

    private (PodSandbox, Container)? Resolve(string id)
    {
        if (containers.Get(id) is not { } record || sandboxes.Get(record.PodId) is not { } sandbox) return null;
        return (NriMapper.Pod(sandbox), NriMapper.Container(record, ReadSpec(record)));
    }

    private Task ForContainerAsync(string what, string id, Func<NriAdaptation, PodSandbox, Container, Task> call) =>
        _nri is { Idle: false } && Resolve(id) is var (pod, container) ? QuietlyAsync(what, nri => call(nri, pod, container)) : Task.CompletedTask;

    /// <summary>An event after the fact: what a plugin answers cannot undo it, so a failure is logged, as containerd does.</summary>
    private async Task QuietlyAsync(string what, Func<NriAdaptation, Task> call)
    {
        if (_nri is not { Idle: false } nri) return;
        try
        {
            await call(nri);
        }
        catch (NriException e)
        {
            LogEventFailed(logger, what, e.Message);
        }
    }

    private static OciSpec? ReadSpec(ContainerRecord record)
    {
        try
        {
            using var file = File.OpenRead(Path.Combine(record.Bundle, "config.json"));
            return JsonSerializer.Deserialize(file, OciJsonContext.Default.OciSpec);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "NRI {Event}: {Error}")]
    private static partial void LogEventFailed(ILogger logger, string @event, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "NRI update of container {Container} failed: {Error}")]
    private static partial void LogUpdateFailed(ILogger logger, string container, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "NRI evicts container {Container}: {Reason}")]
    private static partial void LogEvicting(ILogger logger, string container, string reason);
}
