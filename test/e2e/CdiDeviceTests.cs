using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// CDI devices through the socket: specs written by the test into berthd's spec directory, for real character devices
/// of this host at new paths (the numbers of /dev/null, /dev/zero and /dev/full), env, a mount and a createContainer
/// hook; both ways of asking (CDI_devices and cdi.k8s.io annotations); changes seen without a restart; a bad spec
/// skipped and logged; unknown devices refused and nothing left.
/// </summary>
public sealed class CdiDeviceTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private void WriteSpec(string name, string json) => File.WriteAllText(Path.Combine(bed.CdiSpecDirectory, name), json);

    private ContainerConfig Container(string name, IEnumerable<string> devices, params string[] command)
    {
        var config = bed.Container(name, command);
        foreach (var device in devices) config.CDIDevices.Add(new CDIDevice { Name = device });
        return config;
    }

    private async Task<string> ShAsync(string id, string script)
    {
        var (code, stdout, stderr) = await bed.ExecAsync(id, "sh", "-c", script);
        Assert.True(code == 0, $"`{script}` exited {code}: {stdout}{stderr}");
        return stdout.Trim();
    }

    [Fact]
    public async Task A_device_gets_its_nodes_env_mount_and_hook_and_its_cgroup_refuses_the_rest()
    {
        var data = Directory.CreateTempSubdirectory("berth-cdi-data-").FullName;
        var marks = Directory.CreateTempSubdirectory("berth-cdi-hook-").FullName;
        File.WriteAllText(Path.Combine(data, "firmware.bin"), "vendor firmware\n");
        WriteSpec("vendor.json", $$"""
            {
              "cdiVersion": "0.6.0",
              "kind": "vendor.example/dev",
              "containerEdits": { "env": ["VENDOR_SPEC=1"] },
              "devices": [
                {
                  "name": "a",
                  "containerEdits": {
                    "env": ["DEVICE_A=on"],
                    "deviceNodes": [
                      { "path": "/dev/vendor-null", "hostPath": "/dev/null" },
                      { "path": "/dev/vendor-zero", "type": "c", "major": 1, "minor": 5 },
                      { "path": "/dev/vendor-full", "hostPath": "/dev/full", "permissions": "rw" },
                      { "path": "/dev/vendor-fuse", "hostPath": "/dev/fuse", "permissions": "rw" },
                      { "path": "/dev/vendor-locked", "hostPath": "/dev/loop-control", "permissions": "none" }
                    ],
                    "mounts": [ { "hostPath": "{{data}}", "containerPath": "/opt/vendor", "options": ["ro", "nosuid", "nodev", "bind"] } ],
                    "hooks": [ { "hookName": "createContainer", "path": "/bin/sh", "args": ["sh", "-c", "cat > {{marks}}/state.json"] } ]
                  }
                }
              ]
            }
            """);
        var pod = bed.Pod("cdi-a");
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var id = await bed.RunAsync(podId, pod, Container("app", ["vendor.example/dev=a"], "sleep", "600"));
            // Character devices with the host nodes' numbers, at the spec's paths, and usable.
            Assert.Equal("character special file 1 3\ncharacter special file 1 5\ncharacter special file 1 7\ncharacter special file a ed",
                await ShAsync(id, "for d in null zero full locked; do stat -c '%F %t %T' /dev/vendor-$d; done"));
            await ShAsync(id, "echo gone > /dev/vendor-null");
            Assert.Equal("16", await ShAsync(id, "head -c 16 /dev/vendor-zero | wc -c"));
            Assert.Contains("No space left on device", (await bed.ExecAsync(id, "sh", "-c", "echo x > /dev/vendor-full")).Stderr, StringComparison.Ordinal);
            // Devices runc does not allow by default: one opens as the spec allows it, and the device cgroup refuses the
            // other, to which the spec gives no permission.
            await ShAsync(id, ": < /dev/vendor-fuse");
            Assert.Contains("Operation not permitted", (await bed.ExecAsync(id, "sh", "-c", ": < /dev/vendor-locked")).Stderr, StringComparison.Ordinal);
            Assert.Equal("1 on", await ShAsync(id, "echo $VENDOR_SPEC $DEVICE_A"));
            Assert.Equal("vendor firmware", await ShAsync(id, "cat /opt/vendor/firmware.bin"));
            Assert.NotEqual(0, (await bed.ExecAsync(id, "sh", "-c", "echo x > /opt/vendor/new")).ExitCode);
            // The hook ran with the container's state on its stdin, as OCI hooks get it.
            using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(marks, "state.json")));
            Assert.Equal(id, state.RootElement.GetProperty("id").GetString());
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            Directory.Delete(data, recursive: true);
            Directory.Delete(marks, recursive: true);
            File.Delete(Path.Combine(bed.CdiSpecDirectory, "vendor.json"));
        }
    }

    [Fact]
    public async Task Annotations_and_the_field_both_ask_and_a_spec_change_is_seen_by_the_next_create()
    {
        const string Spec = """
            cdiVersion: 0.6.0
            kind: vendor.example/net
            devices:
            - name: one
              containerEdits:
                env: [NET_ONE=VALUE]
            - name: two
              containerEdits:
                env: [NET_TWO=2]
            """;
        WriteSpec("net.yaml", Spec.Replace("VALUE", "first", StringComparison.Ordinal));
        var pod = bed.Pod("cdi-asks");
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var config = Container("both", ["vendor.example/net=one"], "sleep", "600");
            config.Annotations["cdi.k8s.io/vendor.example_net"] = "vendor.example/net=two,vendor.example/net=one";
            var both = await bed.RunAsync(podId, pod, config);
            Assert.Equal("first 2", await ShAsync(both, "echo $NET_ONE $NET_TWO"));

            WriteSpec("net.yaml", Spec.Replace("VALUE", "second", StringComparison.Ordinal));
            var again = await bed.RunAsync(podId, pod, Container("again", ["vendor.example/net=one"], "sleep", "600"));
            Assert.Equal("second", await ShAsync(again, "echo $NET_ONE"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            File.Delete(Path.Combine(bed.CdiSpecDirectory, "net.yaml"));
        }
    }

    [Fact]
    public async Task A_malformed_spec_is_skipped_with_a_log_line_and_an_unknown_device_leaves_nothing()
    {
        WriteSpec("broken.json", """{"cdiVersion":"0.6.0","kind":"vendor.example/broken","devices":[{"name":"x","containerEdits":{"env":["NOEQUALS"]}}]}""");
        WriteSpec("fine.json", """{"cdiVersion":"0.6.0","kind":"vendor.example/fine","devices":[{"name":"x","containerEdits":{"env":["FINE=1"]}}]}""");
        var pod = bed.Pod("cdi-bad");
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var fine = await bed.RunAsync(podId, pod, Container("fine", ["vendor.example/fine=x"], "sleep", "600"));
            Assert.Equal("1", await ShAsync(fine, "echo $FINE"));
            Assert.Contains($"CDI spec {Path.Combine(bed.CdiSpecDirectory, "broken.json")} is skipped: devices[0] 'x'.containerEdits: env[0]: 'NOEQUALS' is not NAME=VALUE", bed.Daemon.Output, StringComparison.Ordinal);

            var before = Host.MountsUnder(bed.Daemon.Directory).Length;
            foreach (var (devices, annotation, code, message) in new (string[], string?, StatusCode, string)[]
                     {
                         (["vendor.example/broken=x"], null, StatusCode.InvalidArgument, "CDI device vendor.example/broken=x is unknown"),
                         (["vendor.example/fine=y"], null, StatusCode.InvalidArgument, "CDI device vendor.example/fine=y is unknown: no spec in"),
                         (["gpu0"], null, StatusCode.InvalidArgument, "config.CDI_devices[0].name: 'gpu0': not a fully qualified CDI device name"),
                         ([], "vendor.example/fine=x,nvidia", StatusCode.InvalidArgument, "config.annotations[cdi.k8s.io/plugin]: 'nvidia': not a fully qualified"),
                     })
            {
                var config = Container("refused", devices, "sleep", "600");
                if (annotation is not null) config.Annotations["cdi.k8s.io/plugin"] = annotation;
                var e = await Assert.ThrowsAsync<RpcException>(() => bed.CreateAsync(podId, pod, config));
                Assert.Equal(code, e.StatusCode);
                Assert.StartsWith(message, e.Status.Detail, StringComparison.Ordinal);
            }
            Assert.Equal([fine], (await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = podId } })).Containers.Select(c => c.Id));
            Assert.Equal(before, Host.MountsUnder(bed.Daemon.Directory).Length);

            // Operators see the devices, the skipped file, and the refusals.
            var status = await bed.Daemon.Runtime.StatusAsync(new StatusRequest { Verbose = true });
            using var cdi = JsonDocument.Parse(status.Info["cdi"]);
            Assert.Contains(cdi.RootElement.GetProperty("devices").EnumerateArray(), d => d.GetProperty("name").GetString() == "vendor.example/fine=x");
            Assert.True(cdi.RootElement.GetProperty("errors").TryGetProperty(Path.Combine(bed.CdiSpecDirectory, "broken.json"), out _));
            var listed = await BerthCli.RunAsync(bed.Daemon, ["devices"]);
            Assert.Equal(0, listed.ExitCode);
            Assert.Matches($"vendor.example/fine=x +{Path.Combine(bed.CdiSpecDirectory, "fine.json")}", listed.Output);
            Assert.Contains($"skipped {Path.Combine(bed.CdiSpecDirectory, "broken.json")}: ", listed.Output, StringComparison.Ordinal);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{bed.Daemon.MetricsPort}") };
            Assert.Matches("berth_cdi_device_requests_refused_total\\{reason=\"unresolvable\"\\} [1-9]", await http.GetStringAsync("/metrics"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            File.Delete(Path.Combine(bed.CdiSpecDirectory, "broken.json"));
            File.Delete(Path.Combine(bed.CdiSpecDirectory, "fine.json"));
        }
    }

    [Fact]
    public async Task A_pod_with_its_own_user_namespace_gets_its_device_node_and_an_idmapped_mount()
    {
        var data = Directory.CreateTempSubdirectory("berth-cdi-userns-").FullName;
        File.WriteAllText(Path.Combine(data, "root-owned"), "x\n");
        WriteSpec("userns.json", $$"""
            {
              "cdiVersion": "0.6.0", "kind": "vendor.example/userns",
              "devices": [ { "name": "a", "containerEdits": {
                "deviceNodes": [ { "path": "/dev/vendor-null", "hostPath": "/dev/null" } ],
                "mounts": [ { "hostPath": "{{data}}", "containerPath": "/opt/vendor", "options": ["ro", "bind"] } ] } } ]
            }
            """);
        var pod = bed.Pod("cdi-userns");
        var userns = new UserNamespace { Mode = NamespaceMode.Pod };
        userns.Uids.Add(new IDMapping { ContainerId = 0, HostId = 300000, Length = 65536 });
        userns.Gids.Add(new IDMapping { ContainerId = 0, HostId = 300000, Length = 65536 });
        pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions = userns;
        var podId = await bed.RunPodAsync(pod);
        try
        {
            var config = Container("app", ["vendor.example/userns=a"], "sleep", "600");
            config.Linux.SecurityContext.NamespaceOptions = pod.Linux.SecurityContext.NamespaceOptions.Clone();
            var id = await bed.RunAsync(podId, pod, config);
            await ShAsync(id, "echo x > /dev/vendor-null");
            // The node's root owns the mounted file, and inside it is root's, not the range's overflow ID.
            Assert.Equal("0:0", await ShAsync(id, "stat -c %u:%g /opt/vendor/root-owned"));
        }
        finally
        {
            await bed.RemovePodAsync(podId);
            Directory.Delete(data, recursive: true);
            File.Delete(Path.Combine(bed.CdiSpecDirectory, "userns.json"));
        }
        Assert.DoesNotContain(Host.MountsUnder(bed.Daemon.Directory), m => m.Contains("idmapped", StringComparison.Ordinal));
    }
}
