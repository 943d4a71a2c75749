using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// Stats from real cgroups (this host is cgroup v1), writable layers, pod network counters, container events and
/// the Stream* twins of the List RPCs, all through berthd's socket. The bed collects stats every second and
/// streams lists in chunks of three.
/// </summary>
public sealed class StatsTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private RuntimeService.RuntimeServiceClient Runtime => bed.Daemon.Runtime;

    private async Task<(string PodId, string ContainerId)> RunAsync(string name, bool hostNetwork, params string[] command)
    {
        var pod = bed.Pod(name, hostNetwork);
        var podId = await bed.RunPodAsync(pod);
        return (podId, await bed.RunAsync(podId, pod, bed.Container(name, command)));
    }

    /// <summary>Polls ContainerStats until <paramref name="done"/> holds; fails with the last reading.</summary>
    private async Task<ContainerStats> WaitForStatsAsync(string id, Func<ContainerStats, bool> done, string what)
    {
        ContainerStats? last = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(20); DateTime.UtcNow < deadline; await Task.Delay(500))
        {
            last = (await Runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = id })).Stats;
            if (done(last)) return last;
        }
        Assert.Fail($"{what}; last reading: {last}");
        return last!;
    }

    [Fact]
    public async Task A_container_burning_cpu_uses_about_one_core()
    {
        var (podId, id) = await RunAsync("burn", true, "sh", "-c", "while :; do :; done");
        try
        {
            // The machine is shared with other tests: a reading between 0.6 and 1.3 cores counts as one core.
            var stats = await WaitForStatsAsync(id, s => s.Cpu?.UsageNanoCores?.Value is > 600_000_000 and < 1_300_000_000, "usage_nano_cores near one core");
            Assert.True(stats.Cpu.UsageCoreNanoSeconds.Value > 0);
            Assert.Equal(id, stats.Attributes.Id);
            Assert.Equal("burn", stats.Attributes.Metadata.Name);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_container_holding_50_MiB_has_a_working_set_above_that()
    {
        // Pages of the pod's /dev/shm (tmpfs) are charged to the container that wrote them and are not reclaimable file cache.
        var (podId, id) = await RunAsync("mem", true, "sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=55; sleep 3600");
        try
        {
            var stats = await WaitForStatsAsync(id, s => s.Memory?.WorkingSetBytes?.Value > 50UL << 20, "working_set_bytes above 50 MiB");
            Assert.True(stats.Memory.UsageBytes.Value >= stats.Memory.WorkingSetBytes.Value);
            Assert.True(stats.Memory.PageFaults.Value > 0);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Writing_10_MiB_to_the_rootfs_shows_in_the_writable_layer_after_the_period()
    {
        var (podId, id) = await RunAsync("disk", true, "sh", "-c", "dd if=/dev/zero of=/data/blob bs=1M count=10; sleep 3600");
        try
        {
            var stats = await WaitForStatsAsync(id, s => s.WritableLayer?.UsedBytes?.Value >= 10UL << 20, "writable layer above 10 MiB");
            Assert.True(stats.WritableLayer.InodesUsed.Value >= 1);
            Assert.False(string.IsNullOrEmpty(stats.WritableLayer.FsId.Mountpoint));

            // ImageFsInfo reports the writable layers as the containers' filesystem.
            var fs = await bed.Daemon.Images.ImageFsInfoAsync(new ImageFsInfoRequest());
            Assert.Single(fs.ImageFilesystems);
            var containers = Assert.Single(fs.ContainerFilesystems);
            Assert.True(containers.UsedBytes.Value >= 10UL << 20);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task Pod_network_counters_grow_with_traffic_between_two_pods()
    {
        var (serverPod, _) = await RunAsync("web", false, "sh", "-c", "dd if=/dev/zero of=/data/f bs=1M count=2; httpd -f -p 8080 -h /data");
        var (clientPod, client) = await RunAsync("fetch", false, "sleep", "3600");
        try
        {
            var serverIp = (await Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = serverPod })).Status.Network.Ip;
            async Task<NetworkInterfaceUsage> Eth0(string pod)
            {
                var stats = (await Runtime.PodSandboxStatsAsync(new PodSandboxStatsRequest { PodSandboxId = pod })).Stats;
                Assert.Equal("eth0", stats.Linux.Network.DefaultInterface.Name);
                Assert.DoesNotContain(stats.Linux.Network.Interfaces, i => i.Name == "lo");
                return stats.Linux.Network.DefaultInterface;
            }
            var serverBefore = await Eth0(serverPod);
            var clientBefore = await Eth0(clientPod);
            var fetched = false;
            for (var attempt = 0; attempt < 20 && !fetched; attempt++)
            {
                fetched = (await bed.ExecAsync(client, "wget", "-q", "-O", "/dev/null", $"http://{serverIp}:8080/f")).ExitCode == 0;
                if (!fetched) await Task.Delay(250); // httpd may not listen yet
            }
            Assert.True(fetched, "wget from the other pod failed");
            var serverAfter = await Eth0(serverPod);
            var clientAfter = await Eth0(clientPod);
            Assert.True(serverAfter.TxBytes.Value - serverBefore.TxBytes.Value >= 2UL << 20, $"server tx {serverBefore.TxBytes} -> {serverAfter.TxBytes}");
            Assert.True(clientAfter.RxBytes.Value - clientBefore.RxBytes.Value >= 2UL << 20, $"client rx {clientBefore.RxBytes} -> {clientAfter.RxBytes}");

            // The pod's own figures and its containers ride along.
            var pod = (await Runtime.PodSandboxStatsAsync(new PodSandboxStatsRequest { PodSandboxId = clientPod })).Stats;
            Assert.Equal(clientPod, pod.Attributes.Id);
            Assert.Equal(client, Assert.Single(pod.Linux.Containers).Attributes.Id);
            Assert.True(pod.Linux.Memory.WorkingSetBytes.Value > 0);
            Assert.True(pod.Linux.Process.ProcessCount.Value >= 1);
        }
        finally
        {
            await bed.RemovePodAsync(clientPod);
            await bed.RemovePodAsync(serverPod);
        }
    }

    [Fact]
    public async Task ListContainerStats_filters_by_id_pod_and_label()
    {
        var podA = bed.Pod("list-a", hostNetwork: true);
        var podB = bed.Pod("list-b", hostNetwork: true);
        var a = await bed.RunPodAsync(podA);
        var b = await bed.RunPodAsync(podB);
        try
        {
            var labelled = bed.Container("one", "sleep", "3600");
            labelled.Labels.Add("tier", "front");
            var one = await bed.RunAsync(a, podA, labelled);
            var two = await bed.RunAsync(a, podA, bed.Container("two", "sleep", "3600"));
            var three = await bed.RunAsync(b, podB, bed.Container("three", "sleep", "3600"));
            async Task<string[]> Ids(ContainerStatsFilter filter) =>
                [.. (await Runtime.ListContainerStatsAsync(new ListContainerStatsRequest { Filter = filter })).Stats.Select(s => s.Attributes.Id).Order()];

            Assert.Equal(new[] { one, two, three }.Order(), (await Runtime.ListContainerStatsAsync(new ListContainerStatsRequest())).Stats
                .Select(s => s.Attributes.Id).Where(i => i == one || i == two || i == three).Order());
            Assert.Equal([one], await Ids(new ContainerStatsFilter { Id = one }));
            Assert.Equal(new[] { one, two }.Order(), await Ids(new ContainerStatsFilter { PodSandboxId = a }));
            var byLabel = new ContainerStatsFilter { PodSandboxId = a };
            byLabel.LabelSelector.Add("tier", "front");
            Assert.Equal([one], await Ids(byLabel));
            Assert.Empty(await Ids(new ContainerStatsFilter { Id = three, PodSandboxId = a }));

            var error = await Assert.ThrowsAsync<RpcException>(() => Runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = "nope" }).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, error.StatusCode);
            error = await Assert.ThrowsAsync<RpcException>(() => Runtime.PodSandboxStatsAsync(new PodSandboxStatsRequest()).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        }
        finally
        {
            await bed.RemovePodAsync(a);
            await bed.RemovePodAsync(b);
        }
    }

    private static async Task<List<ContainerEventResponse>> CollectEventsAsync(
        AsyncServerStreamingCall<ContainerEventResponse> call, string containerId, int count, CancellationToken cancellationToken)
    {
        var events = new List<ContainerEventResponse>();
        while (events.Count < count && await call.ResponseStream.MoveNext(cancellationToken))
        {
            if (call.ResponseStream.Current.ContainerId == containerId) events.Add(call.ResponseStream.Current);
        }
        return events;
    }

    [Fact]
    public async Task Two_subscribers_each_get_a_lifecycle_in_order_and_a_silent_one_stalls_nothing()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var first = Runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: timeout.Token);
        using var second = Runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: timeout.Token);
        using var silent = Runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: timeout.Token); // never read
        await Task.Delay(500); // the subscriptions are in place once the calls have reached berthd

        var pod = bed.Pod("events", hostNetwork: true);
        var podId = await bed.RunPodAsync(pod);
        try
        {
            // The container exits by itself: its STOPPED event comes from the shim's exit, not from a StopContainer.
            var id = await bed.RunAsync(podId, pod, bed.Container("short", "sh", "-c", "sleep 1; exit 3"));
            Assert.Equal(3, (await bed.WaitExitedAsync(id)).ExitCode);
            await Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id });

            ContainerEventType[] expected =
            [
                ContainerEventType.ContainerCreatedEvent, ContainerEventType.ContainerStartedEvent,
                ContainerEventType.ContainerStoppedEvent, ContainerEventType.ContainerDeletedEvent,
            ];
            foreach (var call in new[] { first, second })
            {
                var events = await CollectEventsAsync(call, id, 4, timeout.Token);
                Assert.Equal(expected, events.Select(e => e.ContainerEventType));
                Assert.All(events, e => Assert.Equal(podId, e.PodSandboxStatus.Id));
                Assert.True(events.Select(e => e.CreatedAt).SequenceEqual(events.Select(e => e.CreatedAt).Order()));
                var stopped = Assert.Single(events[2].ContainersStatuses, s => s.Id == id);
                Assert.Equal(3, stopped.ExitCode);
                Assert.DoesNotContain(events[3].ContainersStatuses, s => s.Id == id); // gone once deleted
            }

            // More lifecycles while the silent subscriber reads nothing: none of them waits for it.
            for (var i = 0; i < 5; i++)
            {
                var started = DateTime.UtcNow;
                var next = await bed.RunAsync(podId, pod, bed.Container($"more-{i}", "true"));
                await Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = next });
                Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20));
                Assert.Equal(4, (await CollectEventsAsync(first, next, 4, timeout.Token)).Count);
            }
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task A_subscriber_that_falls_behind_is_dropped_and_the_others_get_everything()
    {
        // A berthd of its own that buffers four events per subscriber. The silent call's HTTP/2 window and Kestrel's
        // output buffer take the first events; after them, its buffer overflows.
        await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { ExtraConfig = "[stats]\nevent_buffer = 4\n" });
        await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Image } });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var reader = daemon.Runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: timeout.Token);
        using var silent = daemon.Runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: timeout.Token);
        await Task.Delay(500);
        var received = new List<ContainerEventResponse>();
        var reading = Task.Run(async () =>
        {
            while (await reader.ResponseStream.MoveNext(timeout.Token)) received.Add(reader.ResponseStream.Current);
        });

        // Each event carries the statuses of all the pod's containers, so 40 of them make events of many KiB.
        var pod = bed.Pod("lagging", hostNetwork: true);
        var podId = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod })).PodSandboxId;
        const int Containers = 40;
        for (var i = 0; i < Containers; i++)
        {
            var id = (await daemon.Runtime.CreateContainerAsync(new CreateContainerRequest
            {
                PodSandboxId = podId, Config = bed.Container($"c{i}", "sleep", "3600"), SandboxConfig = pod,
            })).ContainerId;
            await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        }

        var dropped = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            var count = 0;
            while (await silent.ResponseStream.MoveNext(timeout.Token)) count++;
            Assert.Fail($"the silent subscriber was not dropped; it got all {count} events");
        });
        Assert.Equal(StatusCode.ResourceExhausted, dropped.StatusCode);
        Assert.Contains("was dropped", daemon.Output, StringComparison.Ordinal);

        for (var waited = 0; received.Count < 2 * Containers; waited++)
        {
            Assert.True(waited < 200, $"the reading subscriber got {received.Count} of {2 * Containers} events");
            await Task.Delay(100);
        }
        Assert.Equal(
            Enumerable.Range(0, Containers).SelectMany(_ => new[] { ContainerEventType.ContainerCreatedEvent, ContainerEventType.ContainerStartedEvent }),
            received.Select(e => e.ContainerEventType));
        await timeout.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => reading);
    }

    [Fact]
    public async Task Every_Stream_RPC_returns_its_List_twin_across_several_chunks()
    {
        var pods = new List<(string Id, PodSandboxConfig Config)>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var config = bed.Pod($"stream-{i}", hostNetwork: true);
                config.Labels.Add("stream-test", "yes");
                pods.Add((await bed.RunPodAsync(config), config));
            }
            for (var i = 0; i < 7; i++) await bed.RunAsync(pods[0].Id, pods[0].Config, bed.Container($"c{i}", "sleep", "3600"));
            using (var pusher = new RegistryPusher(bed.Registry))
            {
                for (var i = 0; i < 4; i++)
                {
                    await pusher.PushAsync($"tiny{i}", new TestImageBuilder().Layer(TestLayers.OneFile($"tiny{i}", $"{i}")).Build(), "test");
                    await bed.Daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = $"{bed.Registry.Host}/tiny{i}:test" } });
                }
            }

            static async Task<List<T>> Drain<TResponse, T>(AsyncServerStreamingCall<TResponse> call, Func<TResponse, IEnumerable<T>> items, int chunk)
            {
                var all = new List<T>();
                var messages = 0;
                await foreach (var message in call.ResponseStream.ReadAllAsync())
                {
                    var part = items(message).ToList();
                    Assert.InRange(part.Count, 1, chunk);
                    all.AddRange(part);
                    messages++;
                }
                Assert.True(messages >= 2, $"{messages} message(s) for {all.Count} items");
                return all;
            }

            var podFilter = new PodSandboxFilter();
            podFilter.LabelSelector.Add("stream-test", "yes");
            Assert.Equal(
                (await Runtime.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = podFilter })).Items.Select(p => p.Id).Order(),
                (await Drain(Runtime.StreamPodSandboxes(new StreamPodSandboxesRequest { Filter = podFilter }), m => m.PodSandboxes, 3)).Select(p => p.Id).Order());

            var containerFilter = new ContainerFilter { PodSandboxId = pods[0].Id };
            Assert.Equal(
                (await Runtime.ListContainersAsync(new ListContainersRequest { Filter = containerFilter })).Containers.Select(c => c.Id).Order(),
                (await Drain(Runtime.StreamContainers(new StreamContainersRequest { Filter = containerFilter }), m => m.Containers, 3)).Select(c => c.Id).Order());

            var statsFilter = new ContainerStatsFilter { PodSandboxId = pods[0].Id };
            Assert.Equal(
                (await Runtime.ListContainerStatsAsync(new ListContainerStatsRequest { Filter = statsFilter })).Stats.Select(s => s.Attributes.Id).Order(),
                (await Drain(Runtime.StreamContainerStats(new StreamContainerStatsRequest { Filter = statsFilter }), m => m.ContainerStats, 3)).Select(s => s.Attributes.Id).Order());

            var podStatsFilter = new PodSandboxStatsFilter();
            podStatsFilter.LabelSelector.Add("stream-test", "yes");
            Assert.Equal(
                (await Runtime.ListPodSandboxStatsAsync(new ListPodSandboxStatsRequest { Filter = podStatsFilter })).Stats.Select(s => s.Attributes.Id).Order(),
                (await Drain(Runtime.StreamPodSandboxStats(new StreamPodSandboxStatsRequest { Filter = podStatsFilter }), m => m.PodSandboxStats, 3)).Select(s => s.Attributes.Id).Order());

            Assert.Equal(
                (await Runtime.ListPodSandboxMetricsAsync(new ListPodSandboxMetricsRequest())).PodMetrics.Select(m => m.PodSandboxId).Order(),
                (await Drain(Runtime.StreamPodSandboxMetrics(new StreamPodSandboxMetricsRequest()), m => m.PodSandboxMetrics, 3)).Select(m => m.PodSandboxId).Order());

            Assert.Equal(
                (await bed.Daemon.Images.ListImagesAsync(new ListImagesRequest())).Images.Select(i => i.Id).Order(),
                (await Drain(bed.Daemon.Images.StreamImages(new StreamImagesRequest()), m => m.Images, 3)).Select(i => i.Id).Order());
        }
        finally
        {
            foreach (var (id, _) in pods) await bed.RemovePodAsync(id);
        }
    }

    [Fact]
    public async Task Metrics_status_and_runtime_config_describe_the_runtime()
    {
        var (podId, id) = await RunAsync("metrics", true, "sleep", "3600");
        try
        {
            var descriptors = (await Runtime.ListMetricDescriptorsAsync(new ListMetricDescriptorsRequest())).Descriptors;
            Assert.Contains(descriptors, d => d.Name == "container_cpu_usage_seconds_total");
            var metrics = (await Runtime.ListPodSandboxMetricsAsync(new ListPodSandboxMetricsRequest())).PodMetrics.Single(m => m.PodSandboxId == podId);
            var working = Assert.Single(metrics.ContainerMetrics.Single(c => c.ContainerId == id).Metrics, m => m.Name == "container_memory_working_set_bytes");
            // Each metric has a value for every label key its descriptor names.
            Assert.Equal(descriptors.Single(d => d.Name == working.Name).LabelKeys.Count, working.LabelValues.Count);

            var status = await Runtime.StatusAsync(new StatusRequest());
            Assert.Contains(status.RuntimeHandlers, h => h.Name == "");
            // runc lists the user namespace in its features, and this node's root takes idmapped mounts.
            Assert.Contains(status.RuntimeHandlers, h => h.Name == "runc" && h.Features.UserNamespaces);
            Assert.Equal(CgroupDriver.Cgroupfs, (await Runtime.RuntimeConfigAsync(new RuntimeConfigRequest())).Linux.CgroupDriver);

            using var http = new HttpClient();
            var text = await http.GetStringAsync($"http://127.0.0.1:{bed.Daemon.MetricsPort}/metrics");
            Assert.Matches(@"berth_containers\{state=""running""\} [1-9]", text);
            Assert.Matches(@"berth_pod_sandboxes\{state=""ready""\} [1-9]", text);
            Assert.Contains("berth_shims ", text, StringComparison.Ordinal);

            Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() =>
                Runtime.UpdatePodSandboxResourcesAsync(new UpdatePodSandboxResourcesRequest { PodSandboxId = "nope" }).ResponseAsync)).StatusCode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
        }
    }

    [Fact]
    public async Task UpdatePodSandboxResources_writes_the_pod_total_into_the_pod_cgroup()
    {
        var pod = bed.Pod("resize", hostNetwork: true);
        pod.Linux.CgroupParent = $"/berth-test-{Guid.NewGuid():N}";
        var podId = await bed.RunPodAsync(pod);
        try
        {
            // The pod's cgroup is made by runc with its first container, as kubelet would have made it before.
            // 8 MiB in the pod's /dev/shm stay charged to it: with no swap, nothing can push its usage below that.
            await bed.RunAsync(podId, pod, bed.Container("resize", "sh", "-c", "dd if=/dev/zero of=/dev/shm/hold bs=1M count=8; sleep 3600"));
            string Read(string controller, string file) => File.ReadAllText($"/sys/fs/cgroup/{controller}{pod.Linux.CgroupParent}/{file}").Trim();
            for (var waited = 0; long.Parse(Read("memory", "memory.usage_in_bytes"), System.Globalization.CultureInfo.InvariantCulture) < 8L << 20; waited++)
            {
                Assert.True(waited < 100, "the container never filled /dev/shm");
                await Task.Delay(100);
            }
            await Runtime.UpdatePodSandboxResourcesAsync(new UpdatePodSandboxResourcesRequest
            {
                PodSandboxId = podId,
                Resources = new LinuxContainerResources { MemoryLimitInBytes = 256L << 20, CpuShares = 512, CpuQuota = 50_000, CpuPeriod = 100_000 },
                Overhead = new LinuxContainerResources { MemoryLimitInBytes = 16L << 20, CpuShares = 10 },
            });
            Assert.Equal($"{272L << 20}", Read("memory", "memory.limit_in_bytes"));
            Assert.Equal("522", Read("cpu", "cpu.shares"));
            Assert.Equal("50000", Read("cpu", "cpu.cfs_quota_us"));
            Assert.Equal("100000", Read("cpu", "cpu.cfs_period_us"));

            // Below what the pod uses now: the kernel refuses, and the caller hears which file and why.
            var refused = await Assert.ThrowsAsync<RpcException>(() => Runtime.UpdatePodSandboxResourcesAsync(new UpdatePodSandboxResourcesRequest
            {
                PodSandboxId = podId,
                Resources = new LinuxContainerResources { MemoryLimitInBytes = 1L << 20 },
            }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
            Assert.Contains("memory.limit_in_bytes", refused.Status.Detail, StringComparison.Ordinal);

            Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => Runtime.UpdatePodSandboxResourcesAsync(new UpdatePodSandboxResourcesRequest
            {
                PodSandboxId = podId,
                Resources = new LinuxContainerResources { CpuShares = -1 },
            }).ResponseAsync)).StatusCode);
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            foreach (var controller in Directory.EnumerateDirectories("/sys/fs/cgroup"))
            {
                if (Directory.Exists(controller + pod.Linux.CgroupParent)) Directory.Delete(controller + pod.Linux.CgroupParent);
            }
        }

        var (plainPod, _) = await RunAsync("no-parent", true, "sleep", "3600");
        try
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => Runtime.UpdatePodSandboxResourcesAsync(new UpdatePodSandboxResourcesRequest
            {
                PodSandboxId = plainPod,
                Resources = new LinuxContainerResources { CpuShares = 512 },
            }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
            Assert.Contains("cgroup_parent", error.Status.Detail, StringComparison.Ordinal);
        }
        finally
        {
            await bed.RemovePodAsync(plainPod);
        }
    }
}
