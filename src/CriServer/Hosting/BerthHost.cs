using Berth.CriServer.Configuration;
using Berth.CriServer.Events;
using Berth.CriServer.Stats;
using Berth.CriServer.Observability;
using Berth.CriServer.Services;
using Berth.Cni;
using Berth.ImageStore;
using Berth.Runtime.Containers;
using Berth.Sandbox;
using Berth.CriServer.Streaming;
using Berth.Streaming.Server;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Prometheus;

namespace Berth.CriServer.Hosting;

/// <summary>The composition root: builds the gRPC server on the CRI socket, wires the components, runs until SIGTERM.</summary>
internal static partial class BerthHost
{
    public static async Task<int> RunAsync(BerthConfig config)
    {
        // Before anything starts a child process, which must not inherit systemd's notify socket.
        using var systemd = SystemdNotifier.FromProcess();
        // Whether pods may have user namespaces: Berth's root must take idmapped mounts for their layers, and the
        // namespace's root must be able to reach the bundles in the state directory.
        var unsearchable = StateDirectories.Unsearchable(config.State);
        var (idmappedMounts, probeFailure) = unsearchable is not null
            ? (false, null)
            : await ScratchUserNamespace.TestAsync(
                config.Runtime.ShimBinary, userns => Berth.Runtime.NodeProbe.IdmappedMounts(config.Root, userns), CancellationToken.None);
        // Before the host, so that recovery and the first RPC are traced; disposed last, sending what is left.
        using var tracing = TraceExport.Start(config.Tracing);
        var app = Build(config, idmappedMounts);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("berthd");
        if (unsearchable is not null) LogUserNamespacesOff(logger, unsearchable);
        if (probeFailure is not null) LogUserNamespaceProbeFailed(logger, probeFailure);
        var socket = config.Grpc.Socket;
        try
        {
            // Components open their stores now, so a bad store or option stops startup instead of the first RPC.
            var images = app.Services.GetRequiredService<ImageManager>();
            var containers = app.Services.GetRequiredService<ContainerManager>();
            images.SnapshotsInUse = () => containers.List().SelectMany(c => c.LowerDirs.Concat(c.Mounts.SelectMany(m => m.Image?.LowerDirs ?? [])));
            // A container that kept a removed image's snapshots (as its rootfs or an image volume) lets them go with it.
            containers.Changed += change =>
            {
                if (change.Kind == ContainerChangeKind.Removed
                    && change.Record.Mounts.Select(m => m.Image?.ImageRef).Append(change.Record.ImageRef).Any(id => id is { Length: > 0 } && images.Find(id) is null))
                    _ = images.CollectUnusedAsync();
            };
            await containers.RecoverAsync(CancellationToken.None);
            await app.Services.GetRequiredService<SandboxManager>().RecoverAsync(CancellationToken.None);
            await images.RecoverAsync(CancellationToken.None);
            // After recovery, so plugins synchronize with every pod and container there is; before serving, so no pod
            // starts without the plugins the node has.
            await StartNriAsync(app.Services, config);
        }
        catch (ImageStoreException e)
        {
            await Console.Error.WriteLineAsync($"berthd: {e.Message}");
            await app.DisposeAsync();
            return 2;
        }

        try
        {
            // A umask covers the window between bind() and the chmod below, so the socket is never world-usable.
            var previousMask = Tmds.Linux.LibC.umask(0x7 /* 0007 */);
            try
            {
                await app.StartAsync();
            }
            finally
            {
                Tmds.Linux.LibC.umask(previousMask);
            }
            SocketGuard.Secure(socket, config.Grpc.Gid);
            var bound = app.Services.GetRequiredService<StreamingListener>().Options!.IPEndPoint!;
            app.Services.GetRequiredService<StreamingUrls>().Listening(
                new Uri($"{(config.Streaming.TlsCertFile is null ? "http" : "https")}://{bound}/"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogStartFailed(logger, socket, e);
            await app.DisposeAsync();
            return 1;
        }

        if (config.Runtime.RestrictOomScoreAdj) LogOomClamp(logger, Berth.Runtime.OomScoreAdjustment.ReadOwn());
        else if (Berth.Runtime.OomScoreAdjustment.HostRefusesLowering()) LogOomRefused(logger);
        if (Berth.Runtime.NodeProbe.AppArmorEnabled) LogAppArmorWithoutDefault(logger);
        LogServing(logger, BuildInfo.Version, socket, config.Metrics.Address?.ToString() ?? "off");
        LogStreaming(logger, app.Services.GetRequiredService<StreamingUrls>().BaseUri!);
        // Startup (config, host, stores, recovery) leaves garbage in regions the GC keeps committed; one compacting
        // collection that decommits them gives the idle daemon back a few MiB before it serves.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        systemd.Ready($"serving CRI v1 on {socket}");
        using var stopping = app.Lifetime.ApplicationStopping.Register(systemd.Stopping);
        await app.WaitForShutdownAsync();
        if (app.Services.GetRequiredService<Nri.NriBridge>().Adaptation is { } nri) await nri.DisposeAsync();
        await app.DisposeAsync();
        File.Delete(socket);
        LogStopped(logger);
        return 0;
    }

    private static async Task StartNriAsync(IServiceProvider services, BerthConfig config)
    {
        if (!config.Nri.Enable) return;
        var bridge = services.GetRequiredService<Nri.NriBridge>();
        var nri = new Berth.Nri.Adaptation.NriAdaptation(ComponentOptions.Nri(config), bridge, services.GetRequiredService<ILogger<Berth.Nri.Adaptation.NriAdaptation>>());
        bridge.Adaptation = nri;
        try
        {
            await nri.StartAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
        {
            await nri.DisposeAsync();
            throw new ConfigException($"nri.socket_path: cannot listen on '{config.Nri.SocketPath}': {e.Message}");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "user namespaces are off: other users cannot search {Directory} (it needs o+x, as 0711), so a pod's root could not reach its bundle")]
    private static partial void LogUserNamespacesOff(ILogger logger, string directory);

    [LoggerMessage(Level = LogLevel.Warning, Message = "user namespaces are off: no user namespace could be made on this node: {Failure}")]
    private static partial void LogUserNamespaceProbeFailed(ILogger logger, string failure);

    internal static WebApplication Build(BerthConfig config, bool idmappedMounts)
    {
        var streamingListener = new StreamingListener();
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "berthd" });

        builder.Logging.SetMinimumLevel(config.LogLevel);
        // ASP.NET Core's own chatter (per request, per connection) only when asked for trace.
        builder.Logging.AddFilter("Microsoft", config.LogLevel == LogLevel.Trace ? LogLevel.Trace : LogLevel.Warning);
        builder.Logging.AddFilter("Grpc", config.LogLevel == LogLevel.Trace ? LogLevel.Trace : LogLevel.Warning);
        if (config.LogFormat == LogFormat.Json)
        {
            builder.Logging.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            });
        }

        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = config.Grpc.ShutdownTimeout);
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Bound first, so its port is known about when the CRI socket answers. SPDY and WebSocket both start
            // as HTTP/1.1 upgrades.
            kestrel.Listen(config.Streaming.Address, o =>
            {
                o.Protocols = HttpProtocols.Http1;
                if (config.Streaming.TlsCertFile is { } cert)
                    o.UseHttps(System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(cert, config.Streaming.TlsKeyFile));
                streamingListener.Options = o;
            });
            // Go gRPC clients (kubelet, crictl) speak HTTP/2 with prior knowledge on a unix socket.
            kestrel.ListenUnixSocket(config.Grpc.Socket, o => o.Protocols = HttpProtocols.Http2);
            if (config.Metrics.Address is { } metrics)
                kestrel.Listen(metrics, o => o.Protocols = HttpProtocols.Http1);
            kestrel.Limits.MaxConcurrentUpgradedConnections = config.Streaming.MaxSessions;
        });

        builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>, TransportMemoryPoolFactory>();
        builder.Services.AddRoutingCore();
        builder.Services.AddSingleton(streamingListener);
        builder.Services.AddSingleton(new StreamingOptions { TokenLifetime = config.Streaming.TokenLifetime, IdleTimeout = config.Streaming.IdleTimeout, MaxOutstandingTokens = config.Streaming.MaxOutstanding });
        builder.Services.AddSingleton<StreamingSessions>(s => new StreamingSessions(s.GetRequiredService<StreamingOptions>()));
        builder.Services.AddSingleton<StreamingUrls>();
        builder.Services.AddSingleton(config);
        // Berth's own metrics and the process ones. prometheus-net would also subscribe to every .NET Meter (Kestrel's
        // and hosting's per-request instruments then record on each RPC) and to its own debug series.
        Metrics.SuppressDefaultMetrics(new SuppressDefaultMetricOptions { SuppressMeters = true, SuppressEventCounters = true, SuppressDebugMetrics = true });
        builder.Services.AddSingleton(Metrics.DefaultRegistry);
        builder.Services.AddSingleton<RpcMetrics>();
        builder.Services.AddSingleton<RuntimeMetrics>();
        builder.Services.AddSingleton(ComponentOptions.ImageStore(config));
        builder.Services.AddSingleton<ImageManager>();
        builder.Services.AddSingleton(new CniNetwork(ComponentOptions.Cni(config)));
        builder.Services.AddSingleton(ComponentOptions.Sandbox(config));
        builder.Services.AddSingleton<SandboxManager>();
        builder.Services.AddSingleton(ComponentOptions.Containers(config, idmappedMounts));
        builder.Services.AddSingleton<ContainerManager>();
        builder.Services.AddSingleton<Nri.NriBridge>();
        builder.Services.AddSingleton(config.Stats);
        builder.Services.AddSingleton(Berth.Runtime.Stats.CgroupReader.ForNode(Berth.Runtime.NodeProbe.CgroupV2));
        builder.Services.AddSingleton<StatsCollector>();
        builder.Services.AddHostedService(s => s.GetRequiredService<StatsCollector>());
        builder.Services.AddSingleton(s => new ContainerEvents(
            s.GetRequiredService<ContainerManager>(), s.GetRequiredService<SandboxManager>(), config.Stats.EventBuffer, s.GetRequiredService<ILogger<ContainerEvents>>()));
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<RpcInterceptor>();
            o.EnableDetailedErrors = false;
        });

        var app = builder.Build();
        _ = app.Services.GetRequiredService<RuntimeMetrics>(); // registers its scrape callback
        app.UseWebSockets();
        app.UseRouting();
        app.MapGrpcService<RuntimeService>();
        app.MapGrpcService<ImageService>();
        app.MapStreaming(app.Services.GetRequiredService<StreamingSessions>(), app.Services.GetRequiredService<StreamingOptions>(),
            context => streamingListener.Options?.IPEndPoint is { } bound && context.Connection.LocalPort == bound.Port,
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Berth.Streaming"));
        if (config.Metrics.Address is { } address)
            app.MapMetrics("/metrics").RequireHost($"*:{address.Port}");
        return app;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "berthd {Version} serving CRI v1 on {Socket} (metrics: {Metrics})")]
    private static partial void LogServing(ILogger logger, string version, string socket, string metrics);

    [LoggerMessage(Level = LogLevel.Information, Message = "streaming (exec, attach, port-forward) on {BaseUri}")]
    private static partial void LogStreaming(ILogger logger, Uri baseUri);

    [LoggerMessage(Level = LogLevel.Critical, Message = "cannot serve on {Socket}")]
    private static partial void LogStartFailed(ILogger logger, string socket, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "berthd stopped")]
    private static partial void LogStopped(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "runtime.restrict_oom_score_adj: container oom_score_adj values below berthd's own ({Own}) are raised to it")]
    private static partial void LogOomClamp(ILogger logger, int own);

    [LoggerMessage(Level = LogLevel.Warning, Message = "this host refuses a negative oom_score_adj, so containers that ask for one will fail to start; set runtime.restrict_oom_score_adj = true to raise such values to berthd's own")]
    private static partial void LogOomRefused(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "AppArmor is enabled: Localhost profiles are applied, but Berth has no runtime/default profile yet, so containers without a Localhost profile run without AppArmor confinement (seccomp and capabilities still apply)")]
    private static partial void LogAppArmorWithoutDefault(ILogger logger);
}

/// <summary>The streaming endpoint as Kestrel bound it (with the port the kernel picked for port 0).</summary>
internal sealed class StreamingListener
{
    public ListenOptions? Options { get; set; }
}
