using Berth.Nri.Api;
using Berth.Nri.Native;
using Berth.Nri.Transport;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Berth.Nri.Adaptation;

/// <summary>
/// One plugin's connection: the runtime calls the plugin's Plugin service on multiplexed connection 1 and serves the
/// Runtime service on connection 2. Registration (the plugin calls RegisterPlugin), then Configure; a plugin that
/// times out, breaks the protocol or goes away is closed and dropped, never waited on again.
/// </summary>
internal sealed partial class NriPlugin : IAsyncDisposable
{
    public const string PluginService = "nri.pkg.api.v1alpha1.Plugin";
    public const string RuntimeService = "nri.pkg.api.v1alpha1.Runtime";

    private readonly Multiplexer _mux;
    private readonly TtrpcChannel _client;
    private readonly TtrpcChannel _server;
    private readonly PluginProcess? _process;
    private readonly NriOptions _options;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _closed = new();
    private readonly HashSet<string> _stateChangeOnly = [];

    private NriPlugin(Stream trunk, PluginProcess? process, string index, string name, NriOptions options, Func<UpdateContainersRequest, CancellationToken, Task<UpdateContainersResponse>> updates, ILogger logger)
    {
        (_process, Index, Name, _options, _logger) = (process, index, name, options, logger);
        _mux = new Multiplexer(trunk);
        _client = new TtrpcChannel(_mux.Open(Multiplexer.PluginServiceConnection));
        var services = new TtrpcServices()
            .Add(RuntimeService, "RegisterPlugin", RegisterPluginRequest.Parser, (request, _) => Task.FromResult<IMessage>(Register(request)))
            .Add(RuntimeService, "UpdateContainers", UpdateContainersRequest.Parser, async (request, ct) => await updates(request, ct));
        _server = new TtrpcChannel(_mux.Open(Multiplexer.RuntimeServiceConnection), services);
    }

    public string Index { get; private set; }
    public string Name { get; private set; }
    public string FullName => $"{Index}-{Name}";
    public bool External => _process is null;
    /// <summary>The plugin's process: the one berthd started, or an external plugin's as the kernel names its socket's peer.</summary>
    public int Pid => _process?.Pid ?? PeerPid;

    /// <summary>An external plugin's PID (SO_PEERCRED), set when it connects; 0 when unknown.</summary>
    public int PeerPid { get; init; }
    public EventMask Events { get; private set; }
    public bool IsClosed => _closed.IsCancellationRequested;

    public NriPluginInfo Info => new(Index, Name, External ? "external" : "pre-registered", Pid, Events.Names());

    /// <summary>
    /// Connects a plugin over <paramref name="trunk"/> and waits for it to register and take its configuration;
    /// closes it and throws <see cref="NriException"/> if it does not in time.
    /// </summary>
    public static async Task<NriPlugin> ConnectAsync(
        Stream trunk, PluginProcess? process, string index, string name, string config, NriOptions options,
        Func<UpdateContainersRequest, CancellationToken, Task<UpdateContainersResponse>> updates, ILogger logger, CancellationToken cancellationToken, int peerPid = 0)
    {
        var plugin = new NriPlugin(trunk, process, index, name, options, updates, logger) { PeerPid = peerPid };
        try
        {
            await plugin.StartAsync(config, cancellationToken);
            return plugin;
        }
        catch
        {
            await plugin.DisposeAsync();
            throw;
        }
    }

    private async Task StartAsync(string config, CancellationToken cancellationToken)
    {
        _client.Start();
        _server.Start();
        _mux.Start();
        _ = _mux.Completion.ContinueWith(_ => Close("its connection closed"), TaskScheduler.Default);
        try
        {
            await _registered.Task.WaitAsync(_options.RegistrationTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new NriException($"NRI plugin {Describe()} did not register within {_options.RegistrationTimeout.TotalSeconds:0.###} s");
        }
        ConfigureResponse configured;
        try
        {
            configured = await _client.CallAsync(PluginService, "Configure", new ConfigureRequest
            {
                Config = config,
                RuntimeName = _options.RuntimeName,
                RuntimeVersion = _options.RuntimeVersion,
                RegistrationTimeout = (long)_options.RegistrationTimeout.TotalMilliseconds,
                RequestTimeout = (long)_options.RequestTimeout.TotalMilliseconds,
                NRIVersion = NriOptions.ApiVersion,
            }, ConfigureResponse.Parser, _options.RequestTimeout, cancellationToken);
        }
        catch (TtrpcException e)
        {
            throw new NriException($"NRI plugin {FullName} failed Configure: {e.Message}", e);
        }
        var events = new EventMask(configured.Events);
        if (events.Bits == 0) events = EventMask.Valid;
        else if ((events.Bits & ~EventMask.Valid.Bits) != 0)
            throw new NriException($"NRI plugin {FullName} subscribed to unknown events (mask 0x{events.Bits & ~EventMask.Valid.Bits:x})");
        Events = events;
    }

    private Empty Register(RegisterPluginRequest request)
    {
        if (External)
        {
            // An external plugin names itself; one berthd started has the name of its file.
            var refusal = CheckName(request.PluginName) ?? CheckIndex(request.PluginIdx);
            if (refusal is not null)
            {
                _registered.TrySetException(new NriException($"NRI plugin {Describe()} registered {refusal}"));
                throw new TtrpcException(RpcCode.InvalidArgument, refusal);
            }
            (Name, Index) = (request.PluginName, request.PluginIdx);
        }
        LogRegistered(_logger, FullName, External ? "external" : "pre-registered", string.IsNullOrEmpty(request.NRIVersion) ? "unknown" : request.NRIVersion);
        _registered.TrySetResult();
        return new Empty();
    }

    /// <summary>
    /// Calls <paramref name="method"/> with the request timeout. A plugin that does not answer in time, or whose
    /// connection broke, is closed and the call yields null; an error the plugin answered is an <see cref="NriException"/>.
    /// </summary>
    public async Task<TResponse?> CallAsync<TResponse>(string method, IMessage request, MessageParser<TResponse> parser, CancellationToken cancellationToken)
        where TResponse : class, IMessage<TResponse>
    {
        if (IsClosed) return null;
        try
        {
            return await _client.CallAsync(PluginService, method, request, parser, _options.RequestTimeout, cancellationToken);
        }
        catch (TtrpcException e) when (e.IsFatal)
        {
            LogDropped(_logger, FullName, method, e.Message);
            await CloseAsync();
            return null;
        }
        catch (TtrpcException e)
        {
            throw new NriException($"NRI plugin {FullName} failed {method}: {e.Message}", e);
        }
    }

    /// <summary>
    /// A lifecycle event without an answer: its own RPC, or StateChange for a plugin built on a stub older than the
    /// event's RPC (NRI before v0.10 carried these in StateChange), as NRI's adaptation falls back.
    /// </summary>
    public async Task NotifyAsync(Event e, IMessage request, PodSandbox? pod, Container? container, CancellationToken cancellationToken)
    {
        if (!Events.IsSet(e)) return;
        var method = EventMask.PrettyName(e);
        if (!_stateChangeOnly.Contains(method))
        {
            try
            {
                await CallRawAsync(method, request, cancellationToken);
                return;
            }
            catch (NriException ex) when (ex.InnerException is TtrpcException { Code: RpcCode.Unimplemented })
            {
                _stateChangeOnly.Add(method);
            }
        }
        var change = new StateChangeEvent { Event = e, Pod = pod, Container = container };
        await CallAsync("StateChange", change, Empty.Parser, cancellationToken);
    }

    private Task<Empty?> CallRawAsync(string method, IMessage request, CancellationToken cancellationToken) =>
        // Every event reply without content parses as Empty; its fields are not read.
        CallAsync(method, request, Empty.Parser, cancellationToken);

    public async Task ShutdownAsync()
    {
        if (IsClosed) return;
        try
        {
            await _client.CallAsync(PluginService, "Shutdown", new Empty(), Empty.Parser, _options.RequestTimeout, CancellationToken.None);
        }
        catch (TtrpcException)
        {
            // Going anyway.
        }
    }

    private void Close(string why)
    {
        if (_closed.IsCancellationRequested) return;
        LogClosed(_logger, FullName, why);
        _ = CloseAsync();
    }

    private async Task CloseAsync()
    {
        if (_closed.IsCancellationRequested) return;
        await _closed.CancelAsync();
        _registered.TrySetException(new NriException($"NRI plugin {Describe()} closed its connection before it registered"));
        await _client.DisposeAsync();
        await _server.DisposeAsync();
        await _mux.DisposeAsync();
        _process?.Dispose();
    }

    public ValueTask DisposeAsync() => new(CloseAsync());

    private string Describe() => Name.Length > 0 ? FullName : External ? $"(external, not yet registered)" : FullName;

    internal static string? CheckName(string name)
    {
        if (name.Length == 0) return "an empty name";
        return name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '+') ? null : $"the name \"{name}\", which has characters outside [A-Za-z0-9-_.+]";
    }

    internal static string? CheckIndex(string index) =>
        index.Length == 2 && char.IsAsciiDigit(index[0]) && char.IsAsciiDigit(index[1]) ? null : $"the index \"{index}\", which is not two digits";

    [LoggerMessage(Level = LogLevel.Information, Message = "NRI plugin {Plugin} registered ({Kind}, NRI {Version})")]
    private static partial void LogRegistered(ILogger logger, string plugin, string kind, string version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "NRI plugin {Plugin} dropped: {Method} failed: {Error}")]
    private static partial void LogDropped(ILogger logger, string plugin, string method, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "NRI plugin {Plugin} closed: {Why}")]
    private static partial void LogClosed(ILogger logger, string plugin, string why);
}
