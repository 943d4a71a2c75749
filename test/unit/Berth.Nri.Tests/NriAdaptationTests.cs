using System.Collections.Concurrent;
using System.Net.Sockets;
using Berth.Nri.Adaptation;
using Berth.Nri.Api;
using Berth.Nri.Transport;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Berth.Nri.Tests;

/// <summary>The runtime side against in-process plugins on a real unix socket: join, order, split Synchronize, timeouts.</summary>
public sealed class NriAdaptationTests : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("nri-").FullName;
    private readonly FakeRuntime _runtime = new();
    private readonly NriAdaptation _nri;

    public NriAdaptationTests()
    {
        _nri = new NriAdaptation(new NriOptions
        {
            SocketPath = Path.Combine(_directory, "nri.sock"),
            PluginPath = Path.Combine(_directory, "plugins"),
            // NRI's default. Shorter would drop a plugin that is only slow to JIT its first calls on a busy machine.
            RequestTimeout = TimeSpan.FromSeconds(2),
            RuntimeName = "berth",
            RuntimeVersion = "test",
        }, _runtime, NullLogger<NriAdaptation>.Instance);
    }

    [Fact]
    public async Task Plugins_are_called_in_index_order_whatever_order_they_joined_in()
    {
        await _nri.StartAsync(CancellationToken.None);
        var calls = new ConcurrentQueue<string>();
        await using var late = await FakePlugin.JoinAsync(_nri, Path.Combine(_directory, "nri.sock"), "20", "late", calls);
        await using var early = await FakePlugin.JoinAsync(_nri, Path.Combine(_directory, "nri.sock"), "10", "early", calls);

        await _nri.RunPodSandboxAsync(new PodSandbox { Id = "p", Name = "pod" }, CancellationToken.None);

        Assert.Equal(["10-early RunPodSandbox pod", "20-late RunPodSandbox pod"], calls.Where(c => c.Contains("RunPodSandbox", StringComparison.Ordinal)));
        Assert.Equal(["10-early", "20-late"], _nri.Plugins.Select(p => $"{p.Index}-{p.Name}"));
    }

    [Fact]
    public async Task Synchronize_too_large_for_one_frame_comes_in_parts_marked_more()
    {
        // 3000 pods of 2 KiB of annotations each: about 6 MiB, over ttrpc's 4 MiB.
        for (var i = 0; i < 3000; i++)
        {
            var pod = new PodSandbox { Id = $"pod{i}", Name = $"pod{i}" };
            pod.Annotations["filler"] = new string('x', 2048);
            _runtime.Pods.Add(pod);
        }
        await _nri.StartAsync(CancellationToken.None);
        var calls = new ConcurrentQueue<string>();
        await using var plugin = await FakePlugin.JoinAsync(_nri, Path.Combine(_directory, "nri.sock"), "10", "sync", calls);

        var parts = calls.Where(c => c.StartsWith("10-sync Synchronize", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, parts.Count);
        Assert.EndsWith("more=True", parts[0], StringComparison.Ordinal);
        Assert.EndsWith("more=False", parts[1], StringComparison.Ordinal);
        Assert.Equal(3000, plugin.SynchronizedPods);
    }

    [Fact]
    public async Task A_plugin_that_does_not_answer_in_time_is_dropped_and_the_event_completes()
    {
        await _nri.StartAsync(CancellationToken.None);
        var calls = new ConcurrentQueue<string>();
        await using var hanging = await FakePlugin.JoinAsync(_nri, Path.Combine(_directory, "nri.sock"), "10", "hangs", calls, hang: true);
        await using var healthy = await FakePlugin.JoinAsync(_nri, Path.Combine(_directory, "nri.sock"), "20", "healthy", calls);

        var adjustment = await _nri.CreateContainerAsync(new PodSandbox { Id = "p", Name = "pod" }, new Container { Id = "c", Name = "app" }, CancellationToken.None);

        Assert.Equal("HEALTHY", Assert.Single(adjustment!.Env).Key);
        Assert.Equal(["20-healthy"], _nri.Plugins.Select(p => $"{p.Index}-{p.Name}"));
    }

    [Fact]
    public async Task A_required_plugin_that_is_not_there_refuses_pods_by_name()
    {
        await using var nri = new NriAdaptation(new NriOptions { SocketPath = "", PluginPath = Path.Combine(_directory, "none"), RequiredPlugins = ["policy"] },
            _runtime, NullLogger<NriAdaptation>.Instance);
        await nri.StartAsync(CancellationToken.None);
        var error = await Assert.ThrowsAsync<NriException>(() => nri.RunPodSandboxAsync(new PodSandbox { Name = "pod" }, CancellationToken.None));
        Assert.Equal("NRI plugin \"policy\" is required (nri.required_plugins) and is not connected", error.Message);
    }

    public async ValueTask DisposeAsync()
    {
        await _nri.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private sealed class FakeRuntime : INriRuntime
    {
        public List<PodSandbox> Pods { get; } = [];

        public Task<(IReadOnlyList<PodSandbox> Pods, IReadOnlyList<Container> Containers)> SnapshotAsync(CancellationToken cancellationToken) =>
            Task.FromResult<(IReadOnlyList<PodSandbox>, IReadOnlyList<Container>)>((Pods, []));

        public Task<IReadOnlyList<ContainerUpdate>> UpdateContainersAsync(IReadOnlyList<ContainerUpdate> updates, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<ContainerUpdate>>([]);

        public Task EvictContainersAsync(IReadOnlyList<ContainerEviction> evictions, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>A plugin in the test's process: registers, subscribes to everything but validation, answers or hangs.</summary>
    private sealed class FakePlugin : IAsyncDisposable
    {
        private const string PluginService = "nri.pkg.api.v1alpha1.Plugin";
        private readonly Multiplexer _mux;
        private readonly TtrpcChannel _server;
        private readonly TtrpcChannel _client;
        private int _pods;

        private FakePlugin(Stream trunk, string fullName, ConcurrentQueue<string> calls, bool hang)
        {
            _mux = new Multiplexer(trunk);
            var services = new TtrpcServices()
                .Add(PluginService, "Configure", ConfigureRequest.Parser, (_, _) => Task.FromResult<IMessage>(new ConfigureResponse { Events = EventMask.Valid.Bits & ~(1 << ((int)Event.ValidateContainerAdjustment - 1)) }))
                .Add(PluginService, "Synchronize", SynchronizeRequest.Parser, (r, _) =>
                {
                    Interlocked.Add(ref _pods, r.Pods.Count);
                    calls.Enqueue($"{fullName} Synchronize more={r.More}");
                    return Task.FromResult<IMessage>(new SynchronizeResponse { More = r.More });
                })
                .Add(PluginService, "RunPodSandbox", RunPodSandboxRequest.Parser, (r, _) =>
                {
                    calls.Enqueue($"{fullName} RunPodSandbox {r.Pod.Name}");
                    return Task.FromResult<IMessage>(new Empty());
                })
                .Add(PluginService, "CreateContainer", CreateContainerRequest.Parser, async (r, ct) =>
                {
                    if (hang) await Task.Delay(Timeout.Infinite, ct);
                    var answer = new CreateContainerResponse { Adjust = new ContainerAdjustment() };
                    answer.Adjust.Env.Add(new KeyValue { Key = "HEALTHY", Value = "1" });
                    return answer;
                });
            _server = new TtrpcChannel(_mux.Open(Multiplexer.PluginServiceConnection), services);
            _client = new TtrpcChannel(_mux.Open(Multiplexer.RuntimeServiceConnection));
        }

        public int SynchronizedPods => _pods;

        public static async Task<FakePlugin> JoinAsync(NriAdaptation nri, string socketPath, string index, string name, ConcurrentQueue<string> calls, bool hang = false)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
            var plugin = new FakePlugin(new NetworkStream(socket, ownsSocket: true), $"{index}-{name}", calls, hang);
            plugin._server.Start();
            plugin._client.Start();
            plugin._mux.Start();
            await plugin._client.CallAsync(NriPlugin.RuntimeService, "RegisterPlugin", new RegisterPluginRequest { PluginName = name, PluginIdx = index },
                Empty.Parser, TimeSpan.FromSeconds(5), CancellationToken.None);
            for (var i = 0; i < 1000 && !nri.Plugins.Any(p => p.Name == name); i++) await Task.Delay(20);
            Assert.Contains(nri.Plugins, p => p.Name == name);
            return plugin;
        }

        public async ValueTask DisposeAsync()
        {
            await _client.DisposeAsync();
            await _server.DisposeAsync();
            await _mux.DisposeAsync();
        }
    }
}
