using Berth.Runtime.Cdi;

namespace Berth.Runtime.Tests.Cdi;

/// <summary>CDI spec files as SPEC.md defines them: the spec's own example, YAML and JSON, the version rules, names and edits.</summary>
public sealed class CdiSpecTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("berth-cdi-spec-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private CdiSpec Load(string text, string name = "spec.json")
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, text);
        return CdiSpec.Load(path, 0);
    }

    private string Refusal(string text, string name = "spec.json") => Assert.Throws<FormatException>(() => Load(text, name)).Message;

    /// <summary>SPEC.md's JSON definition, filled in with values of every field.</summary>
    private const string SpecExample = """
        {
          "cdiVersion": "0.7.0",
          "kind": "vendor.com/device",
          "annotations": { "vendor.com/owner": "driver" },
          "devices": [
            {
              "name": "myDevice",
              "annotations": { "vendor.com/slot": "1" },
              "containerEdits": {
                "deviceNodes": [
                  { "hostPath": "/vendor/dev/card1", "path": "/dev/card1", "type": "c", "major": 25, "minor": 25, "fileMode": 384, "permissions": "rw", "uid": 1000, "gid": 1000 },
                  { "path": "/dev/card-render1", "type": "c", "major": 25, "minor": 25, "fileMode": 384, "permissions": "rwm", "uid": 1000, "gid": 1000 }
                ]
              }
            }
          ],
          "containerEdits": {
            "env": [ "FOO=VALID_SPEC", "BAR=BARVALUE1" ],
            "deviceNodes": [ { "path": "/dev/vendorctl", "type": "b", "major": 25, "minor": 25, "fileMode": 384, "permissions": "rw", "uid": 1000, "gid": 1000 } ],
            "mounts": [ { "hostPath": "/bin/vendorBin", "containerPath": "/bin/vendorBin" }, { "hostPath": "/usr/lib/libVendor.so.0", "containerPath": "/usr/lib/libVendor.so.0", "type": "bind", "options": ["ro", "nosuid", "nodev", "bind"] } ],
            "hooks": [ { "hookName": "createContainer", "path": "/bin/vendor-hook", "args": ["vendor-hook", "--arg"], "env": ["PATH=/bin"], "timeout": 5 } ],
            "additionalGids": [ 5, 0 ],
            "intelRdt": { "closID": "vendor", "l3CacheSchema": "L3:0=ff", "memBwSchema": "MB:0=50" }
          }
        }
        """;

    [Fact]
    public void The_spec_example_loads_with_every_field()
    {
        var spec = Load(SpecExample);
        Assert.Equal(("vendor.com", "device"), (spec.Vendor, spec.Class));
        var device = Assert.Single(spec.Devices).Value;
        Assert.Equal("myDevice", device.Name);
        Assert.Equal("/vendor/dev/card1", device.ContainerEdits!.DeviceNodes![0].HostPath);
        Assert.Equal(384u, device.ContainerEdits.DeviceNodes[0].FileMode);
        var edits = spec.Document.ContainerEdits!;
        Assert.Equal(["FOO=VALID_SPEC", "BAR=BARVALUE1"], edits.Env);
        Assert.Equal(5, edits.Hooks![0].Timeout);
        Assert.Equal([5u, 0u], edits.AdditionalGids);
        Assert.Equal("vendor", edits.IntelRdt!.ClosId);
    }

    [Fact]
    public void YAML_reads_as_JSON_does()
    {
        var spec = Load("""
            cdiVersion: "0.5.0"
            kind: nvidia.com/gpu
            devices:
            - name: "0"
              containerEdits:
                deviceNodes:
                - path: /dev/nvidia0
                  type: c
                  major: 195
                  minor: 0
            - name: all
              containerEdits:
                env: ["NVIDIA_VISIBLE_DEVICES=all"]
            containerEdits:
              mounts:
              - hostPath: /usr/lib/libnvidia-ml.so.1
                containerPath: /usr/lib/libnvidia-ml.so.1
                options: [ro, nosuid, nodev, bind]
            """, "nvidia.yaml");
        Assert.Equal(["0", "all"], spec.Devices.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(195, spec.Devices["0"].ContainerEdits!.DeviceNodes![0].Major);
        Assert.Equal(["ro", "nosuid", "nodev", "bind"], spec.Document.ContainerEdits!.Mounts![0].Options);
    }

    [Fact]
    public void A_plain_YAML_number_names_a_device_as_its_text()
    {
        var spec = Load("cdiVersion: 0.5.0\nkind: vendor.com/gpu\ndevices:\n- name: 0\n  containerEdits:\n    env: [A=1]\n", "numbers.yaml");
        Assert.Equal("0", Assert.Single(spec.Devices).Key);
    }

    [Theory]
    [InlineData("0.3.0", """{"cdiVersion":"0.3.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"mounts":[{"hostPath":"/x","containerPath":"/x","type":"bind"}]}}]}""", "mounts[].type needs at least 0.4.0")]
    [InlineData("0.4.0", """{"cdiVersion":"0.4.0","kind":"a.com/b","devices":[{"name":"0d","containerEdits":{"env":["A=1"]}}]}""", "a device name starting with a digit needs at least 0.5.0")]
    [InlineData("0.4.0", """{"cdiVersion":"0.4.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"deviceNodes":[{"path":"/dev/x","hostPath":"/dev/y"}]}}]}""", "deviceNodes[].hostPath needs at least 0.5.0")]
    [InlineData("0.5.0", """{"cdiVersion":"0.5.0","kind":"a.com/b","annotations":{"k":"v"},"devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]}""", "annotations needs at least 0.6.0")]
    [InlineData("0.5.0", """{"cdiVersion":"0.5.0","kind":"a.com/b.c","devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]}""", "a dot in the kind's class needs at least 0.6.0")]
    [InlineData("0.6.0", """{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"additionalGids":[5]}}]}""", "additionalGids needs at least 0.7.0")]
    [InlineData("0.6.0", """{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"intelRdt":{"closID":"x"}}}]}""", "intelRdt needs at least 0.7.0")]
    [InlineData("1.0.0", """{"cdiVersion":"1.0.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"netDevices":[{"hostInterfaceName":"eth1","name":"net1"}]}}]}""", "netDevices needs at least 1.1.0")]
    [InlineData("1.0.0", """{"cdiVersion":"1.0.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"intelRdt":{"schemata":["L3:0=f"]}}}]}""", "intelRdt.schemata or intelRdt.enableMonitoring needs at least 1.1.0")]
    public void A_field_newer_than_the_declared_version_is_refused(string declared, string json, string why)
    {
        Assert.Equal($"cdiVersion {declared} is too old: {why}", Refusal(json));
        // The same spec declaring the version it needs loads.
        var needed = why[(why.LastIndexOf(' ') + 1)..];
        Load(json.Replace($"\"cdiVersion\":\"{declared}\"", $"\"cdiVersion\":\"{needed}\"", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.8.0")]
    [InlineData("1.0.0")]
    [InlineData("v1.1.0")]
    public void Every_released_version_loads(string version) =>
        Load($$$"""{"cdiVersion":"{{{version}}}","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]}""");

    [Theory]
    [InlineData("""{"cdiVersion":"0.9.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]}""", "cdiVersion '0.9.0' is no CDI spec version (0.1.0, 0.2.0, 0.3.0, 0.4.0, 0.5.0, 0.6.0, 0.7.0, 0.8.0, 1.0.0, 1.1.0)")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"b","devices":[{"name":"d","containerEdits":{"env":["A=1"]}}]}""", "kind 'b' is not vendor/class")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[]}""", "the spec defines no devices")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d"}]}""", "devices[0] 'd': the device has no container edits")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"env":["A=1"]}},{"name":"d","containerEdits":{"env":["A=1"]}}]}""", "devices[1] 'd': the spec defines the device twice")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"-d","containerEdits":{"env":["A=1"]}}]}""", "devices[0] '-d': device name '-d' should start with a letter or digit")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"env":["NOEQUALS"]}}]}""", "devices[0] 'd'.containerEdits: env[0]: 'NOEQUALS' is not NAME=VALUE")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"deviceNodes":[{"path":"/dev/x","type":"x"}]}}]}""", "devices[0] 'd'.containerEdits: deviceNodes[0] '/dev/x': type 'x' is not b, c, u or p")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"deviceNodes":[{"path":"/dev/x","permissions":"rwx"}]}}]}""", "devices[0] 'd'.containerEdits: deviceNodes[0] '/dev/x': permissions 'rwx' are not a combination of r, w and m (or none)")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"hooks":[{"hookName":"later","path":"/bin/h"}]}}]}""", "devices[0] 'd'.containerEdits: hooks[0]: 'later' is no OCI hook (prestart, createRuntime, createContainer, startContainer, poststart, poststop)")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"mounts":[{"hostPath":"/x"}]}}]}""", "devices[0] 'd'.containerEdits: mounts[0].containerPath is empty")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"env":["A=1"]},"extra":1}]}""", "devices[0].extra: The JSON property 'extra' could not be mapped to any .NET member contained in type 'Berth.Runtime.Cdi.CdiDeviceDocument'.")]
    [InlineData("""{"cdiVersion":"0.6.0","kind":"a.com/b","devices":[{"name":"d","containerEdits":{"deviceNodes":[{"path":"/dev/x","major":"one"}]}}]}""", "devices[0].containerEdits.deviceNodes[0].major: The JSON value could not be converted to Berth.Runtime.Cdi.CdiDeviceNodeDocument")]
    public void A_spec_that_breaks_a_rule_is_refused_saying_which(string json, string message) => Assert.Equal(message, Refusal(json));

    [Theory]
    [InlineData("vendor.com/class=name", "vendor.com", "class", "name")]
    [InlineData("nvidia.com/gpu=0", "nvidia.com", "gpu", "0")]
    [InlineData("a/b.c=GPU-1:2", "a", "b.c", "GPU-1:2")]
    public void Qualified_names_parse(string name, string vendor, string cls, string device) =>
        Assert.Equal((vendor, cls, device), CdiNames.ParseQualified(name, out _));

    [Theory]
    [InlineData("gpu0", "not a fully qualified CDI device name (vendor/class=name)")]
    [InlineData("vendor.com/gpu", "not a fully qualified CDI device name (vendor/class=name)")]
    [InlineData("vendor.com/gpu=", "not a fully qualified CDI device name (vendor/class=name)")]
    [InlineData("/dev/null", "not a fully qualified CDI device name (vendor/class=name)")]
    [InlineData("1vendor/gpu=0", "vendor '1vendor' should start with a letter")]
    [InlineData("vendor/gp$u=0", "invalid character '$' in class 'gp$u'")]
    [InlineData("vendor/gpu=0,1", "invalid character ',' in device name '0,1'")]
    public void Malformed_names_are_refused_with_the_reason(string name, string error)
    {
        Assert.Null(CdiNames.ParseQualified(name, out var reason));
        Assert.Equal(error, reason);
    }
}
