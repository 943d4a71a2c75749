using Berth.CriServer.Nri;
using Berth.Nri.Api;
using Berth.Runtime.Spec;

namespace Berth.CriServer.Tests;

/// <summary>An NRI adjustment applied to an OCI spec, as NRI's generator applies one for containerd.</summary>
public sealed class NriSpecAdjustmentTests
{
    private static OciSpec Spec() => new()
    {
        Process = new OciProcess
        {
            User = new OciUser(), Args = ["sleep", "1"], Cwd = "/", Env = ["PATH=/bin", "HOME=/root", "KEEP=1"],
            Rlimits = [new OciRlimit("RLIMIT_NOFILE", 1024, 1024)],
        },
        Root = new OciRoot { Path = "rootfs" },
        Mounts = [new OciMount { Destination = "/proc", Type = "proc", Source = "proc" }, new OciMount { Destination = "/data", Type = "bind", Source = "/old" }],
        Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["a"] = "1", ["gone"] = "x" },
        Linux = new OciLinux
        {
            Namespaces = [new OciNamespace("pid"), new OciNamespace("network", "/run/netns/x")],
            Resources = new OciResources { Cpu = new OciCpu { Shares = 2, Cpus = "0-3" }, Memory = new OciMemory { Limit = 1 << 30 } },
        },
    };

    [Fact]
    public void Removals_go_and_what_is_set_replaces_in_place_or_is_added()
    {
        var adjust = new ContainerAdjustment
        {
            Env = { new KeyValue { Key = "-HOME" }, new KeyValue { Key = "PATH", Value = "/usr/bin" }, new KeyValue { Key = "NEW", Value = "2" } },
            Annotations = { ["-gone"] = "", ["b"] = "2" },
            Mounts = { new Mount { Destination = "-/data" }, new Mount { Destination = "/data/sub", Source = "/src", Options = { "bind", "ro" } } },
            Rlimits = { new POSIXRlimit { Type = "RLIMIT_NOFILE", Hard = 9, Soft = 8 } },
            Linux = new LinuxContainerAdjustment
            {
                Namespaces = { new LinuxNamespace { Type = "-network" } },
                OomScoreAdj = new OptionalInt { Value = 500 },
                Resources = new LinuxResources { Cpu = new LinuxCPU { Cpus = "1" }, Pids = new LinuxPids { Limit = 64 } },
                Devices = { new LinuxDevice { Path = "/dev/x", Type = "c", Major = 1, Minor = 3 } },
            },
        };

        var (spec, cdi) = NriSpecAdjustment.Apply(Spec(), adjust);

        Assert.Equal(["PATH=/usr/bin", "KEEP=1", "NEW=2"], spec.Process.Env);
        Assert.Equal(["a", "b"], spec.Annotations!.Keys);
        Assert.Equal(["/proc", "/data/sub"], spec.Mounts.Select(m => m.Destination));
        Assert.Equal(("bind", "/src"), (spec.Mounts[1].Type, spec.Mounts[1].Source));
        Assert.Equal([new OciRlimit("RLIMIT_NOFILE", 9, 8)], spec.Process.Rlimits);
        Assert.Equal(["pid"], spec.Linux.Namespaces.Select(n => n.Type));
        Assert.Equal(500, spec.Process.OomScoreAdj);
        Assert.Equal(("1", 2UL, 64L), (spec.Linux.Resources!.Cpu!.Cpus, spec.Linux.Resources.Cpu.Shares!.Value, spec.Linux.Resources.Pids!.Limit));
        Assert.Equal(1L << 30, spec.Linux.Resources.Memory!.Limit);
        Assert.Equal("/dev/x", Assert.Single(spec.Linux.Devices!).Path);
        var rule = Assert.Single(spec.Linux.Resources.Devices!);
        Assert.Equal((true, "c", 1L, 3L, "rwm"), (rule.Allow, rule.Type, rule.Major!.Value, rule.Minor!.Value, rule.Access));
        Assert.Empty(cdi);
    }

    [Fact]
    public void Args_hooks_scheduler_and_CDI_devices_are_carried_over_in_runtime_specs_words()
    {
        var adjust = new ContainerAdjustment
        {
            Args = { "/bin/other", "arg" },
            Hooks = new Hooks { CreateRuntime = { new Hook { Path = "/hook", Args = { "hook", "x" }, Timeout = new OptionalInt { Value = 5 } } } },
            CDIDevices = { new CDIDevice { Name = "vendor.example/dev=a" } },
            Linux = new LinuxContainerAdjustment
            {
                Scheduler = new LinuxScheduler { Policy = LinuxSchedulerPolicy.SchedFifo, Priority = 10 },
                IoPriority = new LinuxIOPriority { Class = IOPrioClass.Be, Priority = 4 },
            },
        };

        var (spec, cdi) = NriSpecAdjustment.Apply(Spec(), adjust);

        Assert.Equal(["/bin/other", "arg"], spec.Process.Args);
        var hook = Assert.Single(spec.Hooks!.CreateRuntime!);
        Assert.Equal(("/hook", 5), (hook.Path, hook.Timeout));
        Assert.Equal(("SCHED_FIFO", 10), (spec.Process.Scheduler!.Policy, spec.Process.Scheduler.Priority));
        Assert.Equal(new OciIoPriority("IOPRIO_CLASS_BE", 4), spec.Process.IoPriority);
        Assert.Equal(["vendor.example/dev=a"], cdi);
    }

    [Fact]
    public void A_block_io_class_without_classes_configured_is_refused_precisely()
    {
        var adjust = new ContainerAdjustment { Linux = new LinuxContainerAdjustment { Resources = new LinuxResources { BlockioClass = new OptionalString { Value = "slow" } } } };
        var error = Assert.Throws<Berth.Runtime.Containers.ContainerPreconditionException>(() => NriSpecAdjustment.Apply(Spec(), adjust));
        Assert.Contains("block I/O class 'slow'", error.Message, StringComparison.Ordinal);
    }
}
