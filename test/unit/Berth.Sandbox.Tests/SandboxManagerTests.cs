using Berth.Cni;
using Microsoft.Extensions.Logging.Abstractions;

namespace Berth.Sandbox.Tests;

/// <summary>RunPodSandbox, stop, remove and recovery against a fake network and fake namespaces: every step's rollback, idempotence, restarts.</summary>
public sealed class SandboxManagerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("berth-sandboxes-").FullName;
    private readonly FakeNetwork _network = new();
    private readonly FakePodHost _host = new();
    private readonly WarningLog _log = new();
    private SandboxManager _manager;

    public SandboxManagerTests() => _manager = NewManager();

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private SandboxManager NewManager() => new(
        new SandboxOptions { RecordDirectory = Path.Combine(_root, "records"), StateDirectory = Path.Combine(_root, "state"), ShimBinary = "/nonexistent" },
        _network, _host, _log);

    private static SandboxRequest Request(uint attempt = 0, PidMode pid = PidMode.Container) =>
        new() { Name = "web", Namespace = "default", Uid = "uid-1", Attempt = attempt, Hostname = "web", Pid = pid };

    private string[] StateEntries => Directory.Exists(Path.Combine(_root, "state")) ? [.. Directory.EnumerateFileSystemEntries(Path.Combine(_root, "state"))] : [];

    [Fact]
    public async Task A_pod_gets_namespaces_network_shm_and_files_in_that_order()
    {
        var record = await _manager.RunAsync(Request(pid: PidMode.Pod), CancellationToken.None);
        Assert.Equal(SandboxState.Ready, record.State);
        Assert.Equal(["10.88.0.2"], record.Ips);
        Assert.Equal(["namespaces", "infra", "shm"], _host.Calls);
        Assert.Equal(["add"], _network.Calls);
        Assert.NotNull(record.Infra);
        Assert.Contains("10.88.0.2\tweb", File.ReadAllText(record.HostsPath), StringComparison.Ordinal);
        Assert.Equal("web\n", File.ReadAllText(record.HostnamePath));
        Assert.Equal(SandboxState.Ready, _manager.Get(record.Id)!.State);
    }

    [Theory]
    [InlineData("namespaces", "", "creating the pod's namespaces")]
    [InlineData("infra", "", "starting the infra process of the pod's PID namespace")]
    [InlineData("", "add", "setting up the pod network (CNI ADD)")]
    [InlineData("shm", "", "mounting the pod's /dev/shm")]
    public async Task A_failing_step_undoes_every_earlier_one_and_frees_the_name(string hostStep, string networkStep, string named)
    {
        if (hostStep.Length > 0) _host.Failures[hostStep] = new IOException("boom");
        if (networkStep.Length > 0) _network.Failures[networkStep] = new CniException("boom");
        var e = await Assert.ThrowsAsync<SandboxSetupException>(() => _manager.RunAsync(Request(pid: PidMode.Pod), CancellationToken.None));
        Assert.Equal($"RunPodSandbox failed while {named}: boom", e.Message);
        Assert.Empty(_manager.List());
        Assert.Empty(StateEntries);
        // A failed or interrupted ADD may have half set up: the rollback's DEL runs whether or not an ADD is cached.
        Assert.Equal("del", _network.Calls.Last());
        Assert.Contains("stop-infra", _host.Calls);
        Assert.Contains("remove-namespaces", _host.Calls);

        _host.Failures.Clear();
        _network.Failures.Clear();
        await _manager.RunAsync(Request(pid: PidMode.Pod), CancellationToken.None);
    }

    [Fact]
    public async Task Bad_requests_are_refused_before_anything_is_made()
    {
        await Assert.ThrowsAsync<SandboxRequestException>(() => _manager.RunAsync(Request() with { RuntimeHandler = "kata" }, CancellationToken.None));
        await Assert.ThrowsAsync<SandboxRequestException>(() => _manager.RunAsync(Request() with { CgroupParent = "/kubepods/../x" }, CancellationToken.None));
        await Assert.ThrowsAsync<SandboxRequestException>(() => _manager.RunAsync(Request() with { Hostname = "Not_A_Host" }, CancellationToken.None));
        Assert.Empty(_host.Calls);
        Assert.Empty(_network.Calls);
        Assert.Empty(_manager.List());
    }

    private static readonly UserNamespaceMapping Userns = new(new IdMapping(0, 100000, 65536), new IdMapping(0, 100000, 65536));

    [Theory]
    [InlineData(PidMode.Container, false)]
    [InlineData(PidMode.Pod, true)]
    public async Task A_user_namespace_pod_gets_its_namespaces_and_infra_from_the_helper(PidMode pid, bool infra)
    {
        var record = await _manager.RunAsync(Request(pid: pid) with { UserNamespace = Userns }, CancellationToken.None);
        Assert.Equal(["user-namespaces", "shm"], _host.Calls);
        Assert.Equal(Userns, record.UserNamespace);
        Assert.Equal(infra, record.Infra is not null);
        Assert.Equal(infra ? ["ipc", "network", "pid", "user", "uts"] : ["ipc", "network", "user", "uts"], record.NamespacePaths.Keys.Order());
        // Stored as asked, for ContainerStatus and for containers created after a restart.
        Assert.Equal(Userns, NewManager().Get(record.Id)!.UserNamespace);
    }

    [Theory]
    [InlineData(1u, 100000u, 65536u, false, "uids[0].container_id")]
    [InlineData(0u, 100000u, 0u, false, "uids[0].length")]
    [InlineData(0u, 4294967290u, 65536u, false, "uids[0]: host IDs")]
    [InlineData(0u, 100000u, 65536u, true, "node's network namespace")]
    public async Task A_user_namespace_that_cannot_be_honoured_is_refused_by_field(uint containerId, uint hostId, uint length, bool hostNetwork, string field)
    {
        var mapping = new IdMapping(containerId, hostId, length);
        var request = Request() with { UserNamespace = new UserNamespaceMapping(mapping, mapping), HostNetwork = hostNetwork };
        var e = await Assert.ThrowsAsync<SandboxRequestException>(() => _manager.RunAsync(request, CancellationToken.None));
        Assert.Contains(field, e.Message, StringComparison.Ordinal);
        Assert.Empty(_host.Calls);
        Assert.Empty(_manager.List());
    }

    [Fact]
    public async Task A_name_is_held_until_its_sandbox_is_removed()
    {
        var first = await _manager.RunAsync(Request(), CancellationToken.None);
        await Assert.ThrowsAsync<SandboxExistsException>(() => _manager.RunAsync(Request(), CancellationToken.None));
        await _manager.RunAsync(Request(attempt: 1), CancellationToken.None);
        await _manager.RemoveAsync(first.Id, CancellationToken.None);
        await _manager.RunAsync(Request(), CancellationToken.None);
    }

    [Fact]
    public async Task Abbreviated_ids_find_a_sandbox_only_when_unique()
    {
        var record = await _manager.RunAsync(Request(), CancellationToken.None);
        Assert.Equal(record.Id, _manager.Find(record.Id[..8])?.Id);
        Assert.Equal(record.Id, _manager.Find(record.Id)?.Id);
        Assert.Null(_manager.Find(""));
        Assert.Null(_manager.Find("zz"));
    }

    [Fact]
    public async Task Stop_releases_once_and_remove_leaves_nothing_both_idempotent()
    {
        await _manager.StopAsync("unknown", CancellationToken.None);
        await _manager.RemoveAsync("unknown", CancellationToken.None);
        var record = await _manager.RunAsync(Request(), CancellationToken.None);

        await _manager.StopAsync(record.Id, CancellationToken.None);
        var stopped = _manager.Get(record.Id)!;
        Assert.Equal((SandboxState.NotReady, true), (stopped.State, stopped.Released));
        Assert.Equal(["add", "del-if-added"], _network.Calls);
        await _manager.StopAsync(record.Id, CancellationToken.None);
        Assert.Equal(2, _network.Calls.Count);

        await _manager.RemoveAsync(record.Id, CancellationToken.None);
        await _manager.RemoveAsync(record.Id, CancellationToken.None);
        Assert.Null(_manager.Get(record.Id));
        Assert.Empty(StateEntries);
        // The network went once, at the stop, while the netns existed; an ordinary lifecycle has nothing to warn of.
        Assert.Equal(["add", "del-if-added"], _network.Calls);
        Assert.Equal(record.NamespacePaths["network"], Assert.Single(_network.Deleted).NetnsPath);
        Assert.Empty(_log.Lines);
    }

    [Fact]
    public async Task Remove_without_a_stop_tears_down_once_with_the_netns()
    {
        var record = await _manager.RunAsync(Request(), CancellationToken.None);
        await _manager.RemoveAsync(record.Id, CancellationToken.None);
        Assert.Equal(record.NamespacePaths["network"], Assert.Single(_network.Deleted).NetnsPath);
        Assert.Empty(_log.Lines);
    }

    [Fact]
    public async Task A_pod_whose_netns_pin_is_gone_still_gets_its_DEL_without_a_netns()
    {
        var record = await _manager.RunAsync(Request(), CancellationToken.None);
        _host.Gone.Add(record.NamespacePaths["network"]);
        await _manager.RemoveAsync(record.Id, CancellationToken.None);
        Assert.Equal("", Assert.Single(_network.Deleted).NetnsPath);
        Assert.Null(_manager.Get(record.Id));
        Assert.Contains("is no network namespace any more", Assert.Single(_log.Lines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pod_whose_infra_died_is_not_ready()
    {
        var record = await _manager.RunAsync(Request(pid: PidMode.Pod), CancellationToken.None);
        _host.DeadInfras.Add(record.Infra!.Pid);
        Assert.Equal(SandboxState.NotReady, _manager.Get(record.Id)!.State);
    }

    [Fact]
    public async Task Recovery_undoes_creates_finishes_stops_stops_pods_without_namespaces_and_collects_the_rest()
    {
        var ready = await _manager.RunAsync(Request(), CancellationToken.None);
        var emptied = await _manager.RunAsync(Request(attempt: 1), CancellationToken.None);
        var stopping = await _manager.RunAsync(Request(attempt: 2), CancellationToken.None);
        var creating = await _manager.RunAsync(Request(attempt: 3), CancellationToken.None);
        var records = new Berth.Records.RecordStore<SandboxRecord>(Path.Combine(_root, "records"), SandboxJsonContext.Default.SandboxRecord,
            r => r.Id, r => r.NameKey, "sandbox", NullLogger.Instance);
        records.Update(records.Get(stopping.Id)! with { State = SandboxState.NotReady });
        records.Update(records.Get(creating.Id)! with { State = SandboxState.Creating });
        _host.Gone.Add(emptied.NamespacePaths["network"]);
        _network.Calls.Clear();

        _manager = NewManager();
        await _manager.RecoverAsync(CancellationToken.None);

        Assert.Equal(SandboxState.Ready, _manager.Get(ready.Id)!.State);
        Assert.Equal((SandboxState.NotReady, true), (_manager.Get(emptied.Id)!.State, _manager.Get(emptied.Id)!.Released));
        Assert.True(_manager.Get(stopping.Id)!.Released);
        Assert.Null(_manager.Get(creating.Id));
        Assert.False(Directory.Exists(creating.Directory));
        Assert.Equal("gc", _network.Calls.Last());
        Assert.Equal(new HashSet<string> { ready.Id, emptied.Id, stopping.Id }, _network.LastLive);
    }
}
