using Berth.Runtime.Cdi;
using Microsoft.Extensions.Logging.Abstractions;

namespace Berth.Runtime.Tests.Cdi;

/// <summary>The registry over real directories: precedence, conflicts, changes seen at once, bad files skipped, edits merged.</summary>
public sealed class CdiRegistryTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("berth-cdi-").FullName;
    private string Static => Path.Combine(_root, "etc-cdi");
    private string Dynamic => Path.Combine(_root, "run-cdi");

    public CdiRegistryTests() => Directory.CreateDirectory(Static);

    private readonly Berth.Native.FileChangeWatcher _watcher = new();

    public void Dispose()
    {
        _watcher.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private CdiRegistry Registry() => new([Static, Dynamic], _watcher, NullLogger.Instance);

    private static string Spec(string kind, string device, string edits, string version = "0.6.0") =>
        "{\"cdiVersion\":\"" + version + "\",\"kind\":\"" + kind + "\",\"devices\":[{\"name\":\"" + device + "\",\"containerEdits\":{" + edits + "}}]}";

    private static void Write(string directory, string name, string text)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, name), text);
    }

    [Fact]
    public void A_later_directory_wins_and_every_device_is_listed_with_its_file()
    {
        Write(Static, "a.json", Spec("example.com/dev", "one", "\"env\":[\"FROM=static\"]"));
        Write(Static, "b.yaml", "cdiVersion: 0.6.0\nkind: example.com/dev\ndevices:\n- name: two\n  containerEdits:\n    env: [TWO=2]\n");
        Write(Dynamic, "a.json", Spec("example.com/dev", "one", "\"env\":[\"FROM=dynamic\"]"));
        using var registry = Registry();
        Assert.Equal(["FROM=dynamic"], registry.Resolve(["example.com/dev=one"]).Env);
        Assert.Equal(
            [new CdiKnownDevice("example.com/dev=one", Path.Combine(Dynamic, "a.json")), new CdiKnownDevice("example.com/dev=two", Path.Combine(Static, "b.yaml"))],
            registry.State().Devices);
    }

    [Fact]
    public void Two_specs_of_one_directory_defining_a_device_leave_it_unresolvable()
    {
        Write(Static, "a.json", Spec("example.com/dev", "one", "\"env\":[\"A=1\"]"));
        Write(Static, "b.json", Spec("example.com/dev", "one", "\"env\":[\"B=1\"]"));
        // As in the reference cache, a later directory does not lift the conflict.
        Write(Dynamic, "c.json", Spec("example.com/dev", "one", "\"env\":[\"C=1\"]"));
        using var registry = Registry();
        var e = Assert.Throws<CdiDeviceException>(() => registry.Resolve(["example.com/dev=one"]));
        Assert.True(e.RequestError);
        Assert.Equal($"CDI device example.com/dev=one is defined by both {Path.Combine(Static, "a.json")} and {Path.Combine(Static, "b.json")}, specs of the same directory: it cannot be resolved until one goes", e.Message);
        Assert.Equal([Path.Combine(Static, "a.json"), Path.Combine(Static, "b.json")], registry.State().Conflicts["example.com/dev=one"]);
        Assert.Equal(1, registry.RefusedUnresolvable);
    }

    [Fact]
    public void A_spec_added_changed_or_removed_is_seen_by_the_next_resolution()
    {
        using var registry = Registry();
        Assert.Throws<CdiDeviceException>(() => registry.Resolve(["example.com/dev=one"]));
        Write(Static, "a.json", Spec("example.com/dev", "one", "\"env\":[\"V=1\"]"));
        Assert.Equal(["V=1"], registry.Resolve(["example.com/dev=one"]).Env);
        File.WriteAllText(Path.Combine(Static, "a.json"), Spec("example.com/dev", "one", "\"env\":[\"V=2\"]"));
        Assert.Equal(["V=2"], registry.Resolve(["example.com/dev=one"]).Env);
        // A directory that was not there when berthd started.
        Write(Dynamic, "b.json", Spec("example.com/late", "x", "\"env\":[\"LATE=1\"]"));
        Assert.Equal(["LATE=1"], registry.Resolve(["example.com/late=x"]).Env);
        File.Delete(Path.Combine(Static, "a.json"));
        Assert.Throws<CdiDeviceException>(() => registry.Resolve(["example.com/dev=one"]));
    }

    [Fact]
    public void A_file_that_does_not_load_is_skipped_and_named_and_the_rest_serve()
    {
        Write(Static, "bad.json", "{ not json");
        Write(Static, "old.json", Spec("example.com/dev", "gids", "\"additionalGids\":[7]", version: "0.6.0"));
        Write(Static, "good.json", Spec("example.com/dev", "one", "\"env\":[\"A=1\"]"));
        Write(Static, "notes.txt", "ignored: neither .json nor .yaml");
        using var registry = Registry();
        Assert.Equal(["A=1"], registry.Resolve(["example.com/dev=one"]).Env);
        var errors = registry.State().Errors;
        Assert.Equal([Path.Combine(Static, "bad.json"), Path.Combine(Static, "old.json")], errors.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("cdiVersion 0.6.0 is too old: additionalGids needs at least 0.7.0", errors[Path.Combine(Static, "old.json")]);
        var unknown = Assert.Throws<CdiDeviceException>(() => registry.Resolve(["example.com/dev=gids"]));
        Assert.StartsWith("CDI device example.com/dev=gids is unknown: no spec in ", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("(kind example.com/dev has example.com/dev=one)", unknown.Message, StringComparison.Ordinal);
        Assert.Contains($"spec files that did not load: {Path.Combine(Static, "bad.json")}: ", unknown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Edits_merge_spec_edits_once_then_each_device_in_order_and_fill_nodes_from_the_host()
    {
        Write(Static, "a.json", """
            {"cdiVersion":"0.7.0","kind":"example.com/dev","containerEdits":{"env":["SPEC=1"],"additionalGids":[0,44]},
             "devices":[
               {"name":"null","containerEdits":{"deviceNodes":[{"path":"/dev/xnull","hostPath":"/dev/null"}],"env":["ONE=1"]}},
               {"name":"zero","containerEdits":{"deviceNodes":[{"path":"/dev/xzero","type":"c","major":1,"minor":5,"permissions":"none"}],"hooks":[{"hookName":"createContainer","path":"/bin/true"}]}}]}
            """);
        using var registry = Registry();
        var cdi = registry.Resolve(["example.com/dev=zero", "example.com/dev=null", "example.com/dev=zero"]);
        Assert.Equal(["example.com/dev=zero", "example.com/dev=null"], cdi.Devices);
        Assert.Equal(["SPEC=1", "ONE=1"], cdi.Env);
        Assert.Equal([44u], cdi.AdditionalGids);
        Assert.Equal(
            [
                new CdiDeviceNode { Path = "/dev/xzero", HostPath = "/dev/xzero", Type = "c", Major = 1, Minor = 5, CgroupAccess = null },
                new CdiDeviceNode { Path = "/dev/xnull", HostPath = "/dev/null", Type = "c", Major = 1, Minor = 3, FileMode = 0x1B6, CgroupAccess = "rwm" },
            ],
            cdi.DeviceNodes);
        Assert.Equal("createContainer", Assert.Single(cdi.Hooks).HookName);
    }

    [Fact]
    public void A_missing_host_node_is_the_nodes_fault_and_a_malformed_name_the_requests()
    {
        Write(Static, "a.json", Spec("example.com/dev", "gone", "\"deviceNodes\":[{\"path\":\"/dev/berth-no-such-node\"}]"));
        using var registry = Registry();
        var host = Assert.Throws<CdiDeviceException>(() => registry.Resolve(["example.com/dev=gone"]));
        Assert.False(host.RequestError);
        Assert.Equal("CDI device example.com/dev=gone: host device /dev/berth-no-such-node: No such file or directory", host.Message);
        var name = Assert.Throws<CdiDeviceException>(() => registry.Resolve(["gpu0"]));
        Assert.Equal("CDI device 'gpu0': not a fully qualified CDI device name (vendor/class=name)", name.Message);
        Assert.Equal((1, 1), (registry.RefusedUnresolvable, registry.RefusedByHost));
    }
}
