using System.Net.Sockets;
using System.Text.Json;
using Berth.Nri.Adaptation;
using Berth.Nri.Api;
using Berth.Nri.Transport;
using Berth.NriTestPlugin;
using Google.Protobuf;

// nri-test-plugin [--socket PATH --name NAME --idx NN] [--behavior FILE] [--reconnect]
// Without --socket it is a pre-registered plugin: NRI_PLUGIN_SOCKET is its connection's fd, NRI_PLUGIN_NAME and
// NRI_PLUGIN_IDX its name, and its behaviour is the config berthd sends in Configure.
string? Arg(string name) => Array.IndexOf(args, name) is var at and >= 0 && at + 1 < args.Length ? args[at + 1] : null;
var socketPath = Arg("--socket");
var name = Arg("--name") ?? Environment.GetEnvironmentVariable("NRI_PLUGIN_NAME") ?? "test";
var index = Arg("--idx") ?? Environment.GetEnvironmentVariable("NRI_PLUGIN_IDX") ?? "50";
var behavior = Arg("--behavior") is { } file ? Parse(File.ReadAllText(file)) : null;
var reconnect = args.Contains("--reconnect");

do
{
    Stream trunk;
    if (socketPath is not null)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException) when (reconnect)
        {
            socket.Dispose();
            await Task.Delay(100);
            continue;
        }
        trunk = new NetworkStream(socket, ownsSocket: true);
    }
    else
    {
        var fd = int.Parse(Environment.GetEnvironmentVariable("NRI_PLUGIN_SOCKET") ?? throw new InvalidOperationException("no --socket and no NRI_PLUGIN_SOCKET"), System.Globalization.CultureInfo.InvariantCulture);
        trunk = new NetworkStream(new Socket(new SafeSocketHandle(fd, ownsHandle: true)), ownsSocket: true);
    }
    var plugin = new TestPlugin(name, index, behavior);
    await plugin.RunAsync(trunk);
}
while (reconnect && socketPath is not null);

static PluginBehavior Parse(string json) => JsonSerializer.Deserialize(json, BehaviorJsonContext.Default.PluginBehavior) ?? new PluginBehavior();

namespace Berth.NriTestPlugin
{
    /// <summary>One connection to the runtime: serves NRI's Plugin service, calls its Runtime service to register.</summary>
    internal sealed class TestPlugin(string name, string index, PluginBehavior? fixedBehavior)
    {
        private const string PluginService = "nri.pkg.api.v1alpha1.Plugin";
        private const string RuntimeService = "nri.pkg.api.v1alpha1.Runtime";
        private PluginBehavior _behavior = fixedBehavior ?? new PluginBehavior();
        private readonly TaskCompletionSource _shutdown = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TtrpcChannel? _runtime;

        public async Task RunAsync(Stream trunk)
        {
            var mux = new Multiplexer(trunk);
            var server = new TtrpcChannel(mux.Open(Multiplexer.PluginServiceConnection), Services());
            var client = _runtime = new TtrpcChannel(mux.Open(Multiplexer.RuntimeServiceConnection));
            server.Start();
            client.Start();
            mux.Start();
            try
            {
                await client.CallAsync(RuntimeService, "RegisterPlugin",
                    new RegisterPluginRequest { PluginName = name, PluginIdx = index, NRIVersion = "v0.12.2" }, Empty.Parser, TimeSpan.FromSeconds(5), CancellationToken.None);
                await Task.WhenAny(mux.Completion, _shutdown.Task);
            }
            catch (TtrpcException e)
            {
                await Console.Error.WriteLineAsync($"nri-test-plugin {index}-{name}: {e.Message}");
            }
            finally
            {
                await client.DisposeAsync();
                await server.DisposeAsync();
                await mux.DisposeAsync();
            }
        }

        private TtrpcServices Services()
        {
            var services = new TtrpcServices()
                .Add(PluginService, "Configure", ConfigureRequest.Parser, (r, _) => Task.FromResult<IMessage>(Configure(r)))
                .Add(PluginService, "Synchronize", SynchronizeRequest.Parser, (r, _) =>
                {
                    Record($"Synchronize pods={string.Join(',', r.Pods.Select(p => p.Name).Order())} containers={string.Join(',', r.Containers.Select(c => c.Name).Order())}");
                    return Task.FromResult<IMessage>(new SynchronizeResponse());
                })
                .Add(PluginService, "Shutdown", Empty.Parser, (_, _) =>
                {
                    _shutdown.TrySetResult();
                    return Task.FromResult<IMessage>(new Empty());
                })
                .Add(PluginService, "CreateContainer", CreateContainerRequest.Parser, (r, ct) => Handle("CreateContainer", r.Pod, r.Container, () => Adjust(r.Container), ct))
                .Add(PluginService, "UpdateContainer", UpdateContainerRequest.Parser, (r, ct) => Handle("UpdateContainer", r.Pod, r.Container, () => Update(r), ct))
                .Add(PluginService, "StopContainer", StopContainerRequest.Parser, (r, ct) => Handle("StopContainer", r.Pod, r.Container, () => new StopContainerResponse(), ct))
                .Add(PluginService, "UpdatePodSandbox", UpdatePodSandboxRequest.Parser, (r, ct) => Handle("UpdatePodSandbox", r.Pod, null, () => new UpdatePodSandboxResponse(), ct))
                .Add(PluginService, "StateChange", StateChangeEvent.Parser, (r, ct) => Handle(EventMask.PrettyName(r.Event), r.Pod, r.Container, () => new Empty(), ct))
                .Add(PluginService, "ValidateContainerAdjustment", ValidateContainerAdjustmentRequest.Parser, (r, _) =>
                {
                    if (_behavior.Reject is not null)
                        Record($"Validate container={r.Container.Name} plugins={string.Join(',', r.Plugins.Select(p => $"{p.Index}-{p.Name}"))} env={string.Join(',', r.Adjust.Env.Select(e => e.Key))}");
                    return Task.FromResult<IMessage>(new ValidateContainerAdjustmentResponse { Reject = _behavior.Reject is not null, Reason = _behavior.Reject ?? "" });
                });
            if (_behavior.StateChangeOnly) return services;
            return services
                .Add(PluginService, "RunPodSandbox", RunPodSandboxRequest.Parser, (r, ct) => Handle("RunPodSandbox", r.Pod, null, () => new RunPodSandboxResponse(), ct))
                .Add(PluginService, "StopPodSandbox", StopPodSandboxRequest.Parser, (r, ct) => Handle("StopPodSandbox", r.Pod, null, () => new StopPodSandboxResponse(), ct))
                .Add(PluginService, "RemovePodSandbox", RemovePodSandboxRequest.Parser, (r, ct) => Handle("RemovePodSandbox", r.Pod, null, () => new RemovePodSandboxResponse(), ct))
                .Add(PluginService, "PostUpdatePodSandbox", PostUpdatePodSandboxRequest.Parser, (r, ct) => Handle("PostUpdatePodSandbox", r.Pod, null, () => new PostUpdatePodSandboxResponse(), ct))
                .Add(PluginService, "PostCreateContainer", PostCreateContainerRequest.Parser, (r, ct) => Handle("PostCreateContainer", r.Pod, r.Container, () => new PostCreateContainerResponse(), ct))
                .Add(PluginService, "StartContainer", StartContainerRequest.Parser, (r, ct) => Handle("StartContainer", r.Pod, r.Container, () => new StartContainerResponse(), ct))
                .Add(PluginService, "PostStartContainer", PostStartContainerRequest.Parser, (r, ct) => Handle("PostStartContainer", r.Pod, r.Container, () =>
                {
                    AfterStart(r.Container.Id);
                    return new PostStartContainerResponse();
                }, ct))
                .Add(PluginService, "PostUpdateContainer", PostUpdateContainerRequest.Parser, (r, ct) => Handle("PostUpdateContainer", r.Pod, r.Container, () => new PostUpdateContainerResponse(), ct))
                .Add(PluginService, "RemoveContainer", RemoveContainerRequest.Parser, (r, ct) => Handle("RemoveContainer", r.Pod, r.Container, () => new RemoveContainerResponse(), ct));
        }

        private ConfigureResponse Configure(ConfigureRequest request)
        {
            if (fixedBehavior is null && request.Config.Length > 0) _behavior = Parse(request.Config);
            Record($"Configure runtime={request.RuntimeName} nri={request.NRIVersion} requestTimeout={request.RequestTimeout}");
            var mask = 0;
            foreach (var e in _behavior.Events)
            {
                var value = Enum.GetValues<Event>().First(v => EventMask.PrettyName(v) == e);
                mask |= 1 << ((int)value - 1);
            }
            return new ConfigureResponse { Events = mask };
        }

        private async Task<IMessage> Handle(string e, PodSandbox? pod, Container? container, Func<IMessage> answer, CancellationToken cancellationToken)
        {
            Record($"{e} pod={pod?.Name} container={container?.Name}");
            if (_behavior.HangOn == e) await Task.Delay(Timeout.Infinite, cancellationToken);
            if (_behavior.FailOn == e) throw new TtrpcException(RpcCode.Unknown, $"{index}-{name} refuses {e}");
            return answer();
        }

        private CreateContainerResponse Adjust(Container container)
        {
            var adjust = new ContainerAdjustment();
            foreach (var (key, value) in _behavior.Env) adjust.Env.Add(new KeyValue { Key = key, Value = value });
            foreach (var key in _behavior.RemoveEnv) adjust.Env.Add(new KeyValue { Key = "-" + key });
            foreach (var (key, value) in _behavior.Annotations) adjust.Annotations[key] = value;
            foreach (var m in _behavior.Mounts) adjust.Mounts.Add(new Mount { Destination = m.Destination, Source = m.Source, Type = m.Type, Options = { m.Options } });
            foreach (var r in _behavior.Rlimits) adjust.Rlimits.Add(new POSIXRlimit { Type = r.Type, Hard = r.Hard, Soft = r.Soft });
            foreach (var device in _behavior.CdiDevices) adjust.CDIDevices.Add(new CDIDevice { Name = device });
            if (_behavior.Cpuset is not null || _behavior.MemoryLimit is not null || _behavior.OomScoreAdj is not null)
            {
                adjust.Linux = new LinuxContainerAdjustment();
                if (_behavior.OomScoreAdj is { } oom) adjust.Linux.OomScoreAdj = new OptionalInt { Value = oom };
                if (_behavior.Cpuset is not null || _behavior.MemoryLimit is not null)
                {
                    adjust.Linux.Resources = new LinuxResources();
                    if (_behavior.Cpuset is { } cpus) adjust.Linux.Resources.Cpu = new LinuxCPU { Cpus = cpus };
                    if (_behavior.MemoryLimit is { } limit) adjust.Linux.Resources.Memory = new LinuxMemory { Limit = new OptionalInt64 { Value = limit } };
                }
            }
            return new CreateContainerResponse { Adjust = adjust };
        }

        /// <summary>An unsolicited update or eviction, sent once the event that prompted it has been answered.</summary>
        private void AfterStart(string containerId)
        {
            if (_behavior.UpdateSharesAfterStart is null && _behavior.EvictAfterStart is null) return;
            _ = Task.Run(async () =>
            {
                await Task.Delay(100);
                var request = new UpdateContainersRequest();
                if (_behavior.UpdateSharesAfterStart is { } shares)
                {
                    request.Update.Add(new ContainerUpdate
                    {
                        ContainerId = containerId,
                        Linux = new LinuxContainerUpdate { Resources = new LinuxResources { Cpu = new LinuxCPU { Shares = new OptionalUInt64 { Value = shares } } } },
                    });
                }
                if (_behavior.EvictAfterStart is { } reason) request.Evict.Add(new ContainerEviction { ContainerId = containerId, Reason = reason });
                var response = await _runtime!.CallAsync(RuntimeService, "UpdateContainers", request, UpdateContainersResponse.Parser, TimeSpan.FromSeconds(10), CancellationToken.None);
                Record($"UpdateContainers failed={response.Failed.Count}");
            });
        }

        private UpdateContainerResponse Update(UpdateContainerRequest request)
        {
            var response = new UpdateContainerResponse();
            if (_behavior.UpdateCpuQuota is { } quota)
            {
                response.Update.Add(new ContainerUpdate
                {
                    ContainerId = request.Container.Id,
                    Linux = new LinuxContainerUpdate { Resources = new LinuxResources { Cpu = new LinuxCPU { Quota = new OptionalInt64 { Value = quota } } } },
                });
            }
            return response;
        }

        private void Record(string line)
        {
            if (_behavior.Record is not { } path) return;
            lock (this) File.AppendAllText(path, $"{index}-{name} {line}\n");
        }

        private static PluginBehavior Parse(string json) => JsonSerializer.Deserialize(json, BehaviorJsonContext.Default.PluginBehavior) ?? new PluginBehavior();
    }
}
