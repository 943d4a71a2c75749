using Berth.Runtime.Containers;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>CreateContainer against a fake runtime: what it makes, what it refuses first, and the rollback at each failing step.</summary>
public sealed class ContainerCreationTests : IDisposable
{
    private readonly LifecycleBed _bed = new();

    public void Dispose() => _bed.Dispose();

    [Fact]
    public async Task A_created_container_has_its_record_bundle_spec_and_shim()
    {
        var record = await _bed.CreateAsync();
        Assert.Equal(ContainerState.Created, record.State);
        Assert.NotNull(record.Shim);
        Assert.True(record.InitPid > 0);
        Assert.True(File.Exists(Path.Combine(record.Bundle, "config.json")));
        Assert.True(Directory.Exists(ContainerManager.WritableLayerOf(record)));
        Assert.Equal((ContainerState.Created, record.Shim), (_bed.Records().Get(record.Id)?.State, _bed.Records().Get(record.Id)?.Shim));
        Assert.Equal(["Created:Created"], _bed.EventsOf(record.Id));
        Assert.Equal(["create"], _bed.Runtime.CallsFor(record.Id));
    }

    [Theory]
    [InlineData("{\"netDevices\":[{\"hostInterfaceName\":\"eth9\",\"name\":\"net1\"}]}", "1.1.0",
        "move network interfaces into the container (netDevices, in ", "which runtime handler '' (fake-runc) does not do")]
    [InlineData("{\"intelRdt\":{\"schemata\":[\"L3:0=f\"]}}", "1.1.0",
        "set intelRdt.schemata or enableMonitoring (in ", "which runtime handler '' (fake-runc) does not know (runtime-spec 1.2.1)")]
    [InlineData("{\"deviceNodes\":[{\"path\":\"/dev/berth-no-such-node\"}]}", "0.6.0",
        "vendor.example/dev=x: host device /dev/berth-no-such-node: No such file or directory", "")]
    public async Task A_CDI_device_the_node_cannot_give_is_FailedPrecondition_before_anything_is_made(string edits, string version, string says, string and)
    {
        Directory.CreateDirectory(_bed.CdiSpecs);
        File.WriteAllText(Path.Combine(_bed.CdiSpecs, "dev.json"),
            $"{{\"cdiVersion\":\"{version}\",\"kind\":\"vendor.example/dev\",\"devices\":[{{\"name\":\"x\",\"containerEdits\":{edits}}}]}}");
        var e = await Assert.ThrowsAsync<ContainerPreconditionException>(() => _bed.CreateAsync(LifecycleBed.Request() with { CdiDevices = ["vendor.example/dev=x"] }));
        Assert.Contains(says, e.Message, StringComparison.Ordinal);
        Assert.Contains(and, e.Message, StringComparison.Ordinal);
        Assert.Empty(_bed.Manager.List());
        Assert.Empty(_bed.Runtime.Calls);
    }

    [Fact]
    public async Task An_unknown_handler_is_refused_before_anything_is_made()
    {
        var hostPath = Path.Combine(_bed.HostPaths, "data");
        var request = LifecycleBed.Request() with
        {
            RuntimeHandler = "kata",
            Mounts = [new ContainerMount { ContainerPath = "/data", HostPath = hostPath }],
        };
        var e = await Assert.ThrowsAsync<ContainerRequestException>(() => _bed.CreateAsync(request));
        Assert.StartsWith("runtime_handler: 'kata'", e.Message, StringComparison.Ordinal);
        Assert.Empty(_bed.Manager.List());
        Assert.False(Directory.Exists(hostPath), "a refused request must not create host paths");
        Assert.Empty(_bed.Runtime.Calls);
    }

    [Fact]
    public async Task A_recursive_read_only_mount_the_handler_cannot_make_is_refused_before_host_paths_are_made()
    {
        var hostPath = Path.Combine(_bed.HostPaths, "ro");
        var request = LifecycleBed.Request() with
        {
            Mounts = [new ContainerMount { ContainerPath = "/ro", HostPath = hostPath, Readonly = true, RecursiveReadonly = true }],
        };
        var e = await Assert.ThrowsAsync<ContainerRequestException>(() => _bed.CreateAsync(request));
        Assert.StartsWith("mounts[0].recursive_read_only:", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(hostPath));
        Assert.Empty(_bed.Manager.List());
    }

    [Fact]
    public async Task A_missing_host_path_is_made_a_directory()
    {
        var hostPath = Path.Combine(_bed.HostPaths, "made");
        var record = await _bed.CreateAsync(LifecycleBed.Request() with { Mounts = [new ContainerMount { ContainerPath = "/m", HostPath = hostPath }] });
        Assert.True(Directory.Exists(hostPath));
        Assert.Equal(hostPath, Assert.Single(record.Mounts).HostPath);
    }

    [Fact]
    public async Task A_failed_runtime_create_leaves_nothing_and_frees_the_name()
    {
        _bed.Runtime.Failures["create"] = new ContainerRuntimeException("runc create: no such file");
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => _bed.CreateAsync());
        Assert.Equal("runc create: no such file", e.Message);
        var id = _bed.Runtime.Calls.Single(c => c.StartsWith("create ", StringComparison.Ordinal))[7..];
        // The shim that may have started is looked for by its command line, and the runtime's state deleted.
        Assert.Equal(["create", "kill-shims", "delete"], _bed.Runtime.CallsFor(id));
        Assert.Empty(_bed.Manager.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_bed.Options.BundleDirectory));
        Assert.Empty(_bed.Events);

        _bed.Runtime.Failures.Clear();
        var record = await _bed.CreateAsync();
        Assert.Equal("app", record.Name);
    }

    [Fact]
    public async Task A_failed_rootfs_mount_is_rolled_back_and_named()
    {
        _bed.Rootfs.MountFailure = new IOException("mount overlay: no such device");
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => _bed.CreateAsync());
        Assert.Equal("CreateContainer failed while mounting the root filesystem: mount overlay: no such device", e.Message);
        Assert.Empty(_bed.Manager.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_bed.Options.BundleDirectory));
        Assert.Equal(["records"], Directory.EnumerateFileSystemEntries(_bed.Options.DataDirectory).Select(Path.GetFileName));
        Assert.Single(_bed.Rootfs.Unmounted);
    }

    [Fact]
    public async Task A_spec_the_builder_refuses_is_invalid_argument_and_rolled_back()
    {
        var request = LifecycleBed.Request() with { Resources = new ContainerResources { CpuShares = 1 } };
        var e = await Assert.ThrowsAsync<ContainerRequestException>(() => _bed.CreateAsync(request));
        Assert.Contains("cpu_shares", e.Message, StringComparison.Ordinal);
        Assert.Empty(_bed.Manager.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_bed.Options.BundleDirectory));
        Assert.DoesNotContain(_bed.Runtime.Calls, c => c.StartsWith("create ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_cancelled_create_is_rolled_back()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _bed.CreateAsync(cancellationToken: cancelled.Token));
        Assert.Empty(_bed.Manager.List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_bed.Options.BundleDirectory));
    }

    [Fact]
    public async Task A_name_is_held_until_its_container_is_removed()
    {
        var first = await _bed.CreateAsync();
        var e = await Assert.ThrowsAsync<ContainerExistsException>(() => _bed.CreateAsync());
        Assert.Contains($"a container named app (attempt 0) exists already in pod pod1: {first.Id}", e.Message, StringComparison.Ordinal);

        var nextAttempt = await _bed.CreateAsync(LifecycleBed.Request(attempt: 1));
        Assert.NotEqual(first.Id, nextAttempt.Id);

        await _bed.Manager.RemoveAsync(first.Id, CancellationToken.None);
        var again = await _bed.CreateAsync();
        Assert.Equal(3, new[] { first.Id, nextAttempt.Id, again.Id }.Distinct().Count());
    }

    [Fact]
    public async Task Abbreviated_ids_find_a_container_only_when_unique()
    {
        var record = await _bed.CreateAsync();
        Assert.Equal(record.Id, _bed.Manager.Find(record.Id[..12])?.Id);
        Assert.Equal(record.Id, _bed.Manager.ResolveId(record.Id[..6]));
        Assert.Null(_bed.Manager.Find("zz"));
        Assert.Equal("zz", _bed.Manager.ResolveId("zz"));
    }
}
