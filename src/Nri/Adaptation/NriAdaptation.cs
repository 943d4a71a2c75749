using System.Net.Sockets;
using Berth.Nri.Api;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Berth.Nri.Adaptation;

/// <summary>
/// The runtime's side of NRI: pre-registered plugins started from the plugin directory, external ones accepted on the
/// socket, each synchronized with every pod and container when it joins, then hooked into every pod and container
/// event in index order. Events are one at a time, as in NRI's own adaptation, so a plugin sees a consistent order;
/// with no plugin and none required they cost nothing.
/// </summary>
public sealed partial class NriAdaptation : IAsyncDisposable
{
    private readonly NriOptions _options;
    private readonly INriRuntime _runtime;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private volatile NriPlugin[] _plugins = [];
    private Socket? _listener;
    private Task? _accepting;

    public NriAdaptation(NriOptions options, INriRuntime runtime, ILogger<NriAdaptation> logger)
    {
        (_options, _runtime, _logger) = (options, runtime, logger);
    }

    /// <summary>The connected plugins, in invocation order.</summary>
    public IReadOnlyList<NriPluginInfo> Plugins => [.. _plugins.Where(p => !p.IsClosed).Select(p => p.Info)];

    public NriOptions Options => _options;

    /// <summary>Refuses when a plugin in <c>required_plugins</c> is not connected.</summary>
    private void CheckRequired()
    {
        foreach (var required in _options.RequiredPlugins)
        {
            if (!_plugins.Any(p => !p.IsClosed && (p.Name == required || p.FullName == required)))
                throw new NriException($"NRI plugin \"{required}\" is required (nri.required_plugins) and is not connected");
        }
    }

    /// <summary>No plugin and none required: every event would be a no-op, so callers need not even build its data.</summary>
    public bool Idle => _plugins.Length == 0 && _options.RequiredPlugins.Count == 0;

    /// <summary>Runs <paramref name="each"/> for every plugin in order, one event at a time; dropped plugins are let go after.</summary>
    private async Task ForEachAsync(Func<NriPlugin, Task> each, bool required, CancellationToken cancellationToken)
    {
        if (Idle) return;
        await _lock.WaitAsync(cancellationToken);
        try
        {
            if (required) CheckRequired();
            foreach (var plugin in _plugins)
            {
                if (!plugin.IsClosed) await each(plugin);
            }
        }
        finally
        {
            if (_plugins.Any(p => p.IsClosed)) _plugins = [.. _plugins.Where(p => !p.IsClosed)];
            _lock.Release();
        }
    }

    public Task RunPodSandboxAsync(PodSandbox pod, CancellationToken cancellationToken) =>
        ForEachAsync(p => p.NotifyAsync(Event.RunPodSandbox, new RunPodSandboxRequest { Pod = pod }, pod, null, cancellationToken), required: true, cancellationToken);

    public Task UpdatePodSandboxAsync(UpdatePodSandboxRequest request, CancellationToken cancellationToken) =>
        ForEachAsync(async p =>
        {
            if (p.Events.IsSet(Event.UpdatePodSandbox)) await p.CallAsync("UpdatePodSandbox", request, UpdatePodSandboxResponse.Parser, cancellationToken);
        }, required: false, cancellationToken);

    public Task PostUpdatePodSandboxAsync(PodSandbox pod, CancellationToken cancellationToken) =>
        ForEachAsync(p => p.NotifyAsync(Event.PostUpdatePodSandbox, new PostUpdatePodSandboxRequest { Pod = pod }, pod, null, cancellationToken), required: false, cancellationToken);

    public Task StopPodSandboxAsync(PodSandbox pod, CancellationToken cancellationToken) =>
        ForEachAsync(p => p.NotifyAsync(Event.StopPodSandbox, new StopPodSandboxRequest { Pod = pod }, pod, null, cancellationToken), required: false, cancellationToken);

    public Task RemovePodSandboxAsync(PodSandbox pod, CancellationToken cancellationToken) =>
        ForEachAsync(p => p.NotifyAsync(Event.RemovePodSandbox, new RemovePodSandboxRequest { Pod = pod }, pod, null, cancellationToken), required: false, cancellationToken);

    /// <summary>
    /// Asks every subscribed plugin, in order, how to adjust a container about to be created, and merges the answers.
    /// Updates the plugins ask of other containers are applied before this returns; a conflict, a plugin's error or a
    /// failed update that may not fail throws <see cref="NriException"/>.
    /// </summary>
    public async Task<ContainerAdjustment?> CreateContainerAsync(PodSandbox pod, Container container, CancellationToken cancellationToken)
    {
        if (Idle) return null;
        var collector = new AdjustmentCollector(container.Id);
        var request = new CreateContainerRequest { Pod = pod, Container = container };
        var invoked = new List<PluginInstance>();
        await ForEachAsync(async p =>
        {
            invoked.Add(new PluginInstance { Name = p.Name, Index = p.Index });
            if (p.Events.IsSet(Event.CreateContainer)) collector.Apply(await p.CallAsync("CreateContainer", request, CreateContainerResponse.Parser, cancellationToken), p.FullName);
        }, required: true, cancellationToken);
        var adjustment = collector.Adjustment();
        await ValidateAsync(pod, container, adjustment, collector, invoked, cancellationToken);
        await ApplyAsync(collector.Updates.Where(u => u.ContainerId != container.Id).ToList(), collector.Evictions, cancellationToken);
        return adjustment;
    }

    /// <summary>
    /// Validator plugins (subscribed to ValidateContainerAdjustment) see the merged result, who owns each field and
    /// which plugins were asked, and may reject it; one rejection fails the create.
    /// </summary>
    private Task ValidateAsync(PodSandbox pod, Container container, ContainerAdjustment adjustment, AdjustmentCollector collector, List<PluginInstance> invoked, CancellationToken cancellationToken)
    {
        if (!_plugins.Any(p => !p.IsClosed && p.Events.IsSet(Event.ValidateContainerAdjustment))) return Task.CompletedTask;
        var request = new ValidateContainerAdjustmentRequest { Pod = pod, Container = container, Adjust = adjustment, Owners = collector.Owners };
        request.Update.AddRange(collector.Updates);
        request.Plugins.AddRange(invoked);
        return ForEachAsync(async p =>
        {
            if (!p.Events.IsSet(Event.ValidateContainerAdjustment)) return;
            var answer = await p.CallAsync("ValidateContainerAdjustment", request, ValidateContainerAdjustmentResponse.Parser, cancellationToken);
            if (answer is { Reject: true })
                throw new NriException($"NRI validator {p.FullName} rejected the adjustment of container {container.Name}: {answer.Reason}");
        }, required: false, cancellationToken);
    }

    public Task PostCreateContainerAsync(PodSandbox pod, Container container, CancellationToken cancellationToken) =>
        NotifyAsync(Event.PostCreateContainer, new PostCreateContainerRequest { Pod = pod, Container = container }, pod, container, cancellationToken);

    public Task StartContainerAsync(PodSandbox pod, Container container, CancellationToken cancellationToken) =>
        NotifyAsync(Event.StartContainer, new StartContainerRequest { Pod = pod, Container = container }, pod, container, cancellationToken);

    public Task PostStartContainerAsync(PodSandbox pod, Container container, CancellationToken cancellationToken) =>
        NotifyAsync(Event.PostStartContainer, new PostStartContainerRequest { Pod = pod, Container = container }, pod, container, cancellationToken);

    /// <summary>
    /// Asks the plugins about a resource update to a container; returns the resources to apply to it (the request's,
    /// as plugins changed them) after applying the updates they ask of other containers.
    /// </summary>
    public async Task<LinuxResources?> UpdateContainerAsync(PodSandbox pod, Container container, LinuxResources resources, CancellationToken cancellationToken)
    {
        if (Idle) return null;
        var collector = new AdjustmentCollector(container.Id);
        var request = new UpdateContainerRequest { Pod = pod, Container = container, LinuxResources = resources };
        await ForEachAsync(async p =>
        {
            if (p.Events.IsSet(Event.UpdateContainer)) collector.Apply(await p.CallAsync("UpdateContainer", request, UpdateContainerResponse.Parser, cancellationToken), p.FullName);
        }, required: false, cancellationToken);
        var own = collector.Updates.FirstOrDefault(u => u.ContainerId == container.Id);
        await ApplyAsync(collector.Updates.Where(u => u.ContainerId != container.Id).ToList(), collector.Evictions, cancellationToken);
        if (own is null) return null;
        var merged = resources.Clone();
        merged.MergeFrom(own.Linux.Resources);
        return merged;
    }

    public Task PostUpdateContainerAsync(PodSandbox pod, Container container, CancellationToken cancellationToken) =>
        NotifyAsync(Event.PostUpdateContainer, new PostUpdateContainerRequest { Pod = pod, Container = container }, pod, container, cancellationToken);

    /// <summary>Tells the plugins a container stopped; applies the updates they then ask of other containers.</summary>
    public async Task StopContainerAsync(PodSandbox pod, Container container, CancellationToken cancellationToken)
    {
        if (Idle) return;
        var collector = new AdjustmentCollector(container.Id);
        var request = new StopContainerRequest { Pod = pod, Container = container };
        await ForEachAsync(async p =>
        {
            if (p.Events.IsSet(Event.StopContainer)) collector.Apply(await p.CallAsync("StopContainer", request, StopContainerResponse.Parser, cancellationToken), p.FullName);
        }, required: false, cancellationToken);
        await ApplyAsync([.. collector.Updates.Where(u => u.ContainerId != container.Id)], [], cancellationToken);
    }

    public Task RemoveContainerAsync(PodSandbox pod, Container container, CancellationToken cancellationToken) =>
        NotifyAsync(Event.RemoveContainer, new RemoveContainerRequest { Pod = pod, Container = container }, pod, container, cancellationToken);

    private Task NotifyAsync(Event e, IMessage request, PodSandbox pod, Container container, CancellationToken cancellationToken) =>
        ForEachAsync(p => p.NotifyAsync(e, request, pod, container, cancellationToken), required: false, cancellationToken);

    private async Task ApplyAsync(List<ContainerUpdate> updates, IReadOnlyList<ContainerEviction> evictions, CancellationToken cancellationToken)
    {
        if (updates.Count > 0)
        {
            var failed = await _runtime.UpdateContainersAsync(updates, cancellationToken);
            if (failed.FirstOrDefault(f => !f.IgnoreFailure) is { } mandatory)
                throw new NriException($"NRI plugins' update of container {mandatory.ContainerId} failed");
        }
        if (evictions.Count > 0) await _runtime.EvictContainersAsync(evictions, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        await _stopping.CancelAsync();
        _listener?.Dispose();
        if (_accepting is not null) await _accepting;
        foreach (var plugin in _plugins) await plugin.DisposeAsync();
        _plugins = [];
        if (_options.SocketPath.Length > 0 && _listener is not null) File.Delete(_options.SocketPath);
    }
}
