using System.Net.Sockets;
using Berth.Nri.Api;
using Berth.Nri.Native;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Berth.Nri.Adaptation;

/// <summary>How plugins join: started from the plugin directory or accepted on the socket, registered, configured and synchronized.</summary>
public sealed partial class NriAdaptation
{
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
                    var plugin = await NriPlugin.ConnectAsync(
                        new NetworkStream(connection, ownsSocket: true), null, "", "", "", _options, UpdateFromPluginAsync, _logger, _stopping.Token, PeerPidOf(connection));
                    await JoinAsync(plugin, _stopping.Token);
                }
                catch (Exception e) when (e is NriException or OperationCanceledException or IOException)
                {
                    LogPluginFailed(_logger, "external", e.Message);
                }
            });
        }
    }

    /// <summary>The connecting process's PID from the kernel (SO_PEERCRED: pid, uid, gid as three ints); 0 if it cannot say.</summary>
    private static int PeerPidOf(Socket connection)
    {
        const int SolSocket = 1, SoPeerCred = 17;
        Span<byte> credentials = stackalloc byte[12];
        try
        {
            return connection.GetRawSocketOption(SolSocket, SoPeerCred, credentials) >= 4 ? BitConverter.ToInt32(credentials) : 0;
        }
        catch (SocketException)
        {
            return 0;
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "NRI plugin {Plugin} not started: {Error}")]
    private static partial void LogPluginFailed(ILogger logger, string plugin, string error);
    [LoggerMessage(Level = LogLevel.Information, Message = "NRI plugin {Plugin} synchronized ({Pods} pods, {Containers} containers) and subscribed to {Events}")]
    private static partial void LogJoined(ILogger logger, string plugin, int pods, int containers, string events);
    [LoggerMessage(Level = LogLevel.Warning, Message = "NRI plugin {Plugin}'s updates at Synchronize failed for {Containers}")]
    private static partial void LogSyncUpdatesFailed(ILogger logger, string plugin, string containers);
    [LoggerMessage(Level = LogLevel.Information, Message = "NRI plugin asked for {Updates} container updates and {Evictions} evictions")]
    private static partial void LogPluginUpdates(ILogger logger, int updates, int evictions);
}
