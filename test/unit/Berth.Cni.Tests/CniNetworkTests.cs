using System.Text.Json.Nodes;

namespace Berth.Cni.Tests;

/// <summary>The plugin protocol against fake plugins (shell scripts that log what they were given).</summary>
public sealed class CniNetworkTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("berth-unit-").FullName;
    private string ConfDir => Path.Combine(_root, "net.d");
    private string BinDir => Path.Combine(_root, "bin");
    private string CallLog => Path.Combine(_root, "calls.log");

    public CniNetworkTests()
    {
        Directory.CreateDirectory(ConfDir);
        Directory.CreateDirectory(BinDir);
        // Every fake plugin logs "COMMAND type container ifname stdin" and, for ADD, answers with its prevResult
        // plus one IP of its own, so the chain order shows in the final result.
        foreach (var (name, address) in new[] { ("first", "10.99.0.5/24"), ("second", "10.99.1.5/24"), ("third", "10.99.2.5/24") })
        {
            WritePlugin(name, $$"""
                stdin=$(cat)
                echo "$CNI_COMMAND {{name}} $CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS $CNI_ARGS $stdin" >> {{CallLog}}
                if [ "$CNI_COMMAND" = ADD ]; then
                  printf '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"%s"}],"ips":[{"address":"{{address}}","interface":0}]}' "$CNI_NETNS"
                fi
                """);
        }
        WritePlugin("failing", """
            cat > /dev/null
            echo '{"cniVersion":"1.0.0","code":11,"msg":"no more addresses","details":"pool 10.99.0.0/24 is exhausted"}'
            exit 1
            """);
        WritePlugin("unready", """
            cat > /dev/null
            [ "$CNI_COMMAND" = STATUS ] || exit 0
            echo '{"cniVersion":"1.1.0","code":50,"msg":"the daemon is not running"}'
            exit 1
            """);
        WritePlugin("crashing", """
            cat > /dev/null
            echo "panic: nil pointer" >&2
            exit 2
            """);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void WritePlugin(string name, string body)
    {
        var path = Path.Combine(BinDir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0x1ED);
    }

    private void WriteConfig(string name, params string[] plugins) => WriteVersionedConfig("1.0.0", "", name, plugins);

    private void WriteVersionedConfig(string version, string extra, string name, params string[] plugins) =>
        File.WriteAllText(Path.Combine(ConfDir, "10-test.conflist"),
            $$"""{"cniVersion":"{{version}}",{{extra}}"name":"{{name}}","plugins":[{{string.Join(",", plugins.Select(p => p.StartsWith('{') ? p : $$"""{"type":"{{p}}"}"""))}}]}""");

    private string[] Commands() => [.. Calls().Select(c => string.Join(' ', c.Split(' ')[..3]))];

    private CniNetwork Network() => new(new CniOptions { ConfDirs = [ConfDir], BinDirs = ["/nonexistent", BinDir], CacheDir = Path.Combine(_root, "cache") });

    private static CniRuntimeConfig Runtime(string id = "pod1") => new()
    {
        ContainerId = id,
        NetnsPath = $"/run/berth/netns/{id}",
        Args = new Dictionary<string, string> { ["K8S_POD_NAMESPACE"] = "default", ["K8S_POD_NAME"] = "web" },
        CapabilityArgs = new JsonObject { ["portMappings"] = new JsonArray(new JsonObject { ["hostPort"] = 8080, ["containerPort"] = 80, ["protocol"] = "tcp" }) },
    };

    private string[] Calls() => File.Exists(CallLog) ? File.ReadAllLines(CallLog) : [];

    [Fact]
    public async Task Add_runs_the_chain_in_order_with_prevResult_and_env()
    {
        WriteConfig("pods", "first", "second", """{"type":"third","capabilities":{"portMappings":true,"bandwidth":true}}""");

        var result = await Network().AddAsync(Runtime(), CancellationToken.None);

        var calls = Calls();
        Assert.Equal(["ADD first", "ADD second", "ADD third"], calls.Select(c => string.Join(' ', c.Split(' ')[..2])));
        Assert.All(calls, c => Assert.Contains(" pod1 eth0 /run/berth/netns/pod1 K8S_POD_NAMESPACE=default;K8S_POD_NAME=web ", c, StringComparison.Ordinal));
        Assert.DoesNotContain("prevResult", calls[0], StringComparison.Ordinal);
        Assert.Contains("\"prevResult\":{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":\"/run/berth/netns/pod1\"}],\"ips\":[{\"address\":\"10.99.0.5/24\"", calls[1], StringComparison.Ordinal);
        Assert.Contains("\"name\":\"pods\",\"cniVersion\":\"1.0.0\"", calls[2], StringComparison.Ordinal);
        // Only the third declared portMappings; bandwidth was declared but not offered.
        Assert.DoesNotContain("runtimeConfig", calls[1], StringComparison.Ordinal);
        Assert.Contains("\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\"}]}", calls[2], StringComparison.Ordinal);
        Assert.Equal("10.99.2.5", Assert.Single(result.SandboxAddresses).ToString());
    }

    [Fact]
    public async Task Del_runs_in_reverse_with_the_config_the_add_used_even_after_a_change()
    {
        WriteConfig("pods", "first", "second");
        var network = Network();
        await network.AddAsync(Runtime(), CancellationToken.None);
        File.Delete(CallLog);

        // The operator swaps the config; the pod set up before must be torn down by the plugins that set it up.
        WriteConfig("other", "third");
        await network.DelAsync(Runtime(), CancellationToken.None);

        var calls = Calls();
        Assert.Equal(["DEL second", "DEL first"], calls.Select(c => string.Join(' ', c.Split(' ')[..2])));
        Assert.Contains("\"prevResult\":", calls[0], StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "cache")));

        // A second DEL finds no cache and uses the current config; it succeeds.
        File.Delete(CallLog);
        await network.DelAsync(Runtime(), CancellationToken.None);
        Assert.Equal(["DEL third"], Calls().Select(c => string.Join(' ', c.Split(' ')[..2])));
    }

    [Fact]
    public async Task A_plugin_error_object_becomes_the_message()
    {
        WriteConfig("pods", "first", "failing");
        var error = await Assert.ThrowsAsync<CniException>(() => Network().AddAsync(Runtime(), CancellationToken.None));
        Assert.Equal("failing ADD failed: no more addresses: pool 10.99.0.0/24 is exhausted", error.Message);
        Assert.Equal(11, error.Code);
    }

    [Fact]
    public async Task A_crashing_plugin_reports_its_exit_code_and_stderr()
    {
        WriteConfig("pods", "crashing");
        var error = await Assert.ThrowsAsync<CniException>(() => Network().AddAsync(Runtime(), CancellationToken.None));
        Assert.Equal("crashing ADD exited with 2: panic: nil pointer", error.Message);
    }

    [Fact]
    public async Task A_missing_plugin_names_the_directories_searched()
    {
        WriteConfig("pods", "nonexistent-plugin");
        var error = await Assert.ThrowsAsync<CniException>(() => Network().AddAsync(Runtime(), CancellationToken.None));
        Assert.Contains($"CNI plugin 'nonexistent-plugin' was not found in /nonexistent, {BinDir}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_config_the_network_is_not_ready_and_a_new_file_is_picked_up()
    {
        var network = Network();
        Assert.Null(network.Current.Config);
        Assert.Contains("no network config found", network.Current.Reason, StringComparison.Ordinal);
        await Assert.ThrowsAsync<CniException>(() => network.AddAsync(Runtime(), CancellationToken.None));

        WriteConfig("pods", "first");
        Assert.Equal("pods", network.Current.Config?.Name);
    }

    [Fact]
    public async Task Status_asks_every_plugin_of_a_CNI_1_1_config_and_reports_the_first_refusal()
    {
        WriteVersionedConfig("1.1.0", "", "pods", "first", "second");
        var network = Network();

        Assert.Equal((true, ""), await network.StatusAsync(CancellationToken.None));
        // STATUS is about the network, not an attachment: no container, netns or ifname, and no runtimeConfig.
        Assert.Equal(["STATUS first  ", "STATUS second  "], Calls().Select(c => c[..(c.IndexOf('{', StringComparison.Ordinal) - 3)]));
        Assert.All(Calls(), c => Assert.Contains("\"cniVersion\":\"1.1.0\"", c, StringComparison.Ordinal));

        WriteVersionedConfig("1.1.0", "", "pods", "first", "unready", "second");
        var (ready, reason) = await network.StatusAsync(CancellationToken.None);
        Assert.False(ready);
        Assert.Contains("unready STATUS failed: the daemon is not running", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_is_never_sent_to_plugins_of_an_older_config()
    {
        WriteVersionedConfig("1.0.0", "", "pods", "unready");
        Assert.Equal((true, ""), await Network().StatusAsync(CancellationToken.None));
        Assert.Empty(Calls());
    }

    [Fact]
    public async Task Gc_deletes_stale_cached_attachments_then_sends_the_valid_ones_to_every_plugin()
    {
        WriteVersionedConfig("1.1.0", "", "pods", "first", "second");
        var network = Network();
        await network.AddAsync(Runtime("live"), CancellationToken.None);
        await network.AddAsync(Runtime("gone"), CancellationToken.None);
        File.Delete(CallLog);

        var errors = await network.GarbageCollectAsync(new HashSet<string> { "live" }, CancellationToken.None);

        Assert.Empty(errors);
        var calls = Calls();
        Assert.Equal(["DEL second gone", "DEL first gone", "GC first ", "GC second "], calls.Select(c => string.Join(' ', c.Split(' ')[..3])));
        // The stale DEL is the one its ADD asked for: same netns and CNI_ARGS, from the cache.
        Assert.Contains(" gone eth0 /run/berth/netns/gone K8S_POD_NAMESPACE=default;K8S_POD_NAME=web ", calls[0], StringComparison.Ordinal);
        Assert.Contains("\"cni.dev/valid-attachments\":[{\"containerID\":\"live\",\"ifname\":\"eth0\"}]", calls[2], StringComparison.Ordinal);
        Assert.DoesNotContain("runtimeConfig", calls[2], StringComparison.Ordinal);
        Assert.Single(Directory.EnumerateFiles(Path.Combine(_root, "cache")));
    }

    [Fact]
    public async Task Gc_removes_a_cache_entry_a_crash_left_half_written()
    {
        WriteVersionedConfig("1.0.0", "", "pods", "first");
        var network = Network();
        await network.AddAsync(Runtime("live"), CancellationToken.None);
        var cache = Path.Combine(_root, "cache");
        await File.WriteAllTextAsync(Path.Combine(cache, "pods-cut-eth0.json.tmp"), "{\"kind\":\"cniCa");

        Assert.Empty(await network.GarbageCollectAsync(new HashSet<string> { "live" }, CancellationToken.None));

        Assert.Equal(["pods-live-eth0.json"], Directory.EnumerateFiles(cache).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Gc_sends_no_GC_to_older_configs_or_when_disabled_but_still_frees_stale_attachments()
    {
        WriteVersionedConfig("1.0.0", "", "pods", "first");
        var network = Network();
        await network.AddAsync(Runtime("gone"), CancellationToken.None);
        File.Delete(CallLog);
        Assert.Empty(await network.GarbageCollectAsync(new HashSet<string>(), CancellationToken.None));
        Assert.Equal(["DEL first gone"], Commands());

        File.Delete(CallLog);
        WriteVersionedConfig("1.1.0", "\"disableGC\":true,", "pods", "first");
        Assert.Empty(await network.GarbageCollectAsync(new HashSet<string>(), CancellationToken.None));
        Assert.Empty(Calls());
    }
}
