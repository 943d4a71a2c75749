using System.Net.Sockets;
using Berth.Nri.Api;
using Berth.Nri.Native;
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

    /// <summary>Starts the pre-registered plugins, synchronizes them, then takes external plugins' connections.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var (index, name, path, config) in PluginDirectory.Discover(_options, _logger))
        {
            try
            {
                var log = _options.PluginLogDirectory is { } logs ? Path.Combine(logs, $"{index}-{name}.log") : null;
                if (log is not null) Directory.CreateDirectory(_options.PluginLogDirectory!);
                var (process, socket) = PluginProcess.Start(path, index, name, log);
                var plugin = await NriPlugin.ConnectAsync(new NetworkStream(socket, ownsSocket: true), process, index, name, config, _options, UpdateFromPluginAsync, _logger, cancellationToken);
                await JoinAsync(plugin, cancellationToken);
            }
            catch (Exception e) when (e is NriException or IOException or SocketException)
            {
                LogPluginFailed(_logger, $"{index}-{name}", e.Message);
            }
        }
        if (_options.SocketPath.Length > 0) Listen();
    }

    private void Listen()
    {
        var path = _options.SocketPath;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(16);
        _listener = listener;
        _accepting = Task.Run(() => AcceptLoopAsync(listener));
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            // Each plugin registers on its own, so a slow one holds up no other.
            _ = Task.Run(async () =>
            {
                try
                {
                    var plugin = await NriPlugin.ConnectAsync(new NetworkStream(connection, ownsSocket: true), null, "", "", "", _options, UpdateFromPluginAsync, _logger, _stopping.Token);
                    await JoinAsync(plugin, _stopping.Token);
                }
                catch (Exception e) when (e is NriException or OperationCanceledException or IOException)
                {
                    LogPluginFailed(_logger, "external", e.Message);
                }
            });
        }
    }

    /// <summary>Synchronizes a registered plugin with every pod and container, then hooks it into events.</summary>
    private async Task JoinAsync(NriPlugin plugin, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            var (pods, containers) = await _runtime.SnapshotAsync(cancellationToken);
            var updates = await SynchronizeAsync(plugin, pods, containers, cancellationToken);
            if (plugin.IsClosed) throw new NriException($"NRI plugin {plugin.FullName} went away during Synchronize");
            if (updates.Count > 0)
            {
                var failed = await _runtime.UpdateContainersAsync(updates, cancellationToken);
                if (failed.Count > 0) LogSyncUpdatesFailed(_logger, plugin.FullName, string.Join(", ", failed.Select(f => f.ContainerId)));
            }
            _plugins = [.. _plugins.Where(p => !p.IsClosed), plugin];
            _plugins = [.. _plugins.OrderBy(p => p.Index, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal)];
            LogJoined(_logger, plugin.FullName, pods.Count, containers.Count, string.Join(",", plugin.Events.Names()));
        }
        catch
        {
            await plugin.DisposeAsync();
            throw;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Synchronize, split into messages a frame can carry when everything at once is too large; every part but the
    /// last has <c>more</c> set, and a plugin answers updates only to the last, as NRI's protocol has it.
    /// </summary>
    private static async Task<IReadOnlyList<ContainerUpdate>> SynchronizeAsync(
        NriPlugin plugin, IReadOnlyList<PodSandbox> pods, IReadOnlyList<Container> containers, CancellationToken cancellationToken)
    {
        const int budget = Transport.TtrpcFrame.MaxDataLength - 64 * 1024;
        var parts = new List<SynchronizeRequest> { new() };
        var size = 0;
        void Add(IMessage item, Action<SynchronizeRequest> add)
        {
            // An item's size plus its tag and length prefix, counted as it goes rather than by re-measuring the part.
            var itemSize = item.CalculateSize() + 6;
            if (size + itemSize > budget && size > 0)
            {
                parts.Add(new SynchronizeRequest());
                size = 0;
            }
            add(parts[^1]);
            size += itemSize;
        }
        foreach (var pod in pods) Add(pod, p => p.Pods.Add(pod));
        foreach (var container in containers) Add(container, p => p.Containers.Add(container));
        for (var i = 0; i < parts.Count - 1; i++) parts[i].More = true;
        SynchronizeResponse? last = null;
        foreach (var request in parts)
        {
            last = await plugin.CallAsync("Synchronize", request, SynchronizeResponse.Parser, cancellationToken);
            if (last is null) return [];
            if (request.More && (last.Update.Count > 0 || !last.More))
                throw new NriException($"NRI plugin {plugin.FullName} does not take a Synchronize split in parts");
        }
        return [.. last!.Update];
    }

    private async Task<UpdateContainersResponse> UpdateFromPluginAsync(UpdateContainersRequest request, CancellationToken cancellationToken)
    {
        LogPluginUpdates(_logger, request.Update.Count, request.Evict.Count);
        var response = new UpdateContainersResponse();
        if (request.Update.Count > 0) response.Failed.AddRange(await _runtime.UpdateContainersAsync([.. request.Update], cancellationToken));
        if (request.Evict.Count > 0) await _runtime.EvictContainersAsync([.. request.Evict], cancellationToken);
        return response;
    }

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

    [LoggerMessage(Level = LogLevel.Warning, Message = "NRI plugin {Plugin} not started: {Error}")]
    private static partial void LogPluginFailed(ILogger logger, string plugin, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "NRI plugin {Plugin} synchronized ({Pods} pods, {Containers} containers) and subscribed to {Events}")]
    private static partial void LogJoined(ILogger logger, string plugin, int pods, int containers, string events);

    [LoggerMessage(Level = LogLevel.Warning, Message = "NRI plugin {Plugin}'s updates at Synchronize failed for {Containers}")]
    private static partial void LogSyncUpdatesFailed(ILogger logger, string plugin, string containers);

    [LoggerMessage(Level = LogLevel.Information, Message = "NRI plugin asked for {Updates} container updates and {Evictions} evictions")]
    private static partial void LogPluginUpdates(ILogger logger, int updates, int evictions);
}
