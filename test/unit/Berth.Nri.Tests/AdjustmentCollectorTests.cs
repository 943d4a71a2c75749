using Berth.Nri.Adaptation;
using Berth.Nri.Api;

namespace Berth.Nri.Tests;

/// <summary>Merging plugins' answers under NRI's ownership rules (pkg/adaptation result.go, pkg/api owners.go).</summary>
public sealed class AdjustmentCollectorTests
{
    [Fact]
    public void Two_plugins_setting_one_env_var_conflict_and_the_error_names_both()
    {
        var collector = new AdjustmentCollector("c1");
        collector.Apply(Create(a => a.Env.Add(new KeyValue { Key = "FOO", Value = "1" })), "05-first");

        var error = Assert.Throws<NriException>(() => collector.Apply(Create(a => a.Env.Add(new KeyValue { Key = "FOO", Value = "2" })), "10-second"));
        Assert.Equal("NRI plugins \"10-second\" and \"05-first\" both tried to set Env FOO", error.Message);
    }

    [Fact]
    public void Different_entries_of_one_field_merge_and_simple_fields_conflict_by_their_proto_names()
    {
        var collector = new AdjustmentCollector("c1");
        collector.Apply(Create(a =>
        {
            a.Env.Add(new KeyValue { Key = "A", Value = "1" });
            a.Linux = new LinuxContainerAdjustment { Resources = new LinuxResources { Cpu = new LinuxCPU { Cpus = "0" } } };
        }), "05-a");
        collector.Apply(Create(a => a.Env.Add(new KeyValue { Key = "B", Value = "2" })), "10-b");

        Assert.Equal(["A=1", "B=2"], collector.Adjustment().Env.Select(e => $"{e.Key}={e.Value}"));
        var error = Assert.Throws<NriException>(() => collector.Apply(Create(a => a.Linux = new LinuxContainerAdjustment
        {
            Resources = new LinuxResources { Cpu = new LinuxCPU { Cpus = "1" } },
        }), "20-c"));
        Assert.Contains("\"20-c\" and \"05-a\" both tried to set CPUSetCPUs", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_removal_takes_out_an_earlier_plugins_mount_and_only_the_remover_may_set_it_again()
    {
        var collector = new AdjustmentCollector("c1");
        collector.Apply(Create(a => a.Mounts.Add(new Mount { Destination = "/data", Source = "/a", Type = "bind" })), "05-a");
        collector.Apply(Create(a =>
        {
            a.Mounts.Add(new Mount { Destination = "-/data" });
            a.Mounts.Add(new Mount { Destination = "/data", Source = "/b", Type = "bind" });
        }), "10-b");

        var mounts = collector.Adjustment().Mounts;
        Assert.Equal(["/data:/b"], mounts.Select(m => $"{m.Destination}:{m.Source}"));
        Assert.Throws<NriException>(() => collector.Apply(Create(a => a.Mounts.Add(new Mount { Destination = "/data", Source = "/c" })), "20-c"));
    }

    [Fact]
    public void A_removal_of_what_no_plugin_set_is_passed_on_marked()
    {
        var collector = new AdjustmentCollector("c1");
        collector.Apply(Create(a =>
        {
            a.Env.Add(new KeyValue { Key = "-HOME" });
            a.Annotations["-io.kubernetes.x"] = "";
        }), "05-a");

        var adjustment = collector.Adjustment();
        Assert.Equal(["-HOME"], adjustment.Env.Select(e => e.Key));
        Assert.Equal(["-io.kubernetes.x"], adjustment.Annotations.Keys);
    }

    [Fact]
    public void Hooks_accumulate_across_plugins_without_conflict()
    {
        var collector = new AdjustmentCollector("c1");
        collector.Apply(Create(a => a.Hooks = new Hooks { Prestart = { new Hook { Path = "/a" } } }), "05-a");
        collector.Apply(Create(a => a.Hooks = new Hooks { Prestart = { new Hook { Path = "/b" } } }), "10-b");

        Assert.Equal(["/a", "/b"], collector.Adjustment().Hooks.Prestart.Select(h => h.Path));
    }

    [Fact]
    public void Updates_to_other_containers_merge_per_container_and_conflict_per_field()
    {
        var collector = new AdjustmentCollector("c1");
        collector.Apply(new CreateContainerResponse { Update = { Update("c2", quota: 1000), Update("c3", quota: 5) } }, "05-a");
        collector.Apply(new CreateContainerResponse { Update = { Update("c2", shares: 10) } }, "10-b");

        var c2 = Assert.Single(collector.Updates, u => u.ContainerId == "c2").Linux.Resources.Cpu;
        Assert.Equal((1000L, 10UL), (c2.Quota.Value, c2.Shares.Value));
        Assert.Throws<NriException>(() => collector.Apply(new CreateContainerResponse { Update = { Update("c3", quota: 7) } }, "20-c"));
    }

    [Fact]
    public void Event_masks_are_bit_event_minus_one()
    {
        var mask = new EventMask((1 << ((int)Event.CreateContainer - 1)) | (1 << ((int)Event.RemovePodSandbox - 1)));
        Assert.True(mask.IsSet(Event.CreateContainer));
        Assert.False(mask.IsSet(Event.StartContainer));
        Assert.Equal(["RemovePodSandbox", "CreateContainer"], mask.Names());
        Assert.Equal(0x3FFF, EventMask.Valid.Bits);
    }

    private static CreateContainerResponse Create(Action<ContainerAdjustment> adjust)
    {
        var adjustment = new ContainerAdjustment();
        adjust(adjustment);
        return new CreateContainerResponse { Adjust = adjustment };
    }

    private static ContainerUpdate Update(string id, long? quota = null, ulong? shares = null)
    {
        var cpu = new LinuxCPU();
        if (quota is { } q) cpu.Quota = new OptionalInt64 { Value = q };
        if (shares is { } s) cpu.Shares = new OptionalUInt64 { Value = s };
        return new ContainerUpdate { ContainerId = id, Linux = new LinuxContainerUpdate { Resources = new LinuxResources { Cpu = cpu } } };
    }
}
