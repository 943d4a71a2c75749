using Berth.Runtime.Cgroups;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Tests;

/// <summary>The cgroup writer on fixture trees laid out as cgroupfs v1 (a hierarchy per controller) and v2.</summary>
public sealed class CgroupWriterTests : IDisposable
{
    private const string Pod = "/kubepods/burstable/pod1";
    private readonly string _root = Directory.CreateTempSubdirectory("berth-cgroup-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string File(string relative) => Path.Combine(_root, relative.TrimStart('/'));

    private void Seed(string relative, string content = "0\n")
    {
        Directory.CreateDirectory(Path.GetDirectoryName(File(relative))!);
        System.IO.File.WriteAllText(File(relative), content);
    }

    private string Read(string relative) => System.IO.File.ReadAllText(File(relative));

    private void SeedV1()
    {
        foreach (var file in new[] { "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us" }) Seed($"cpu{Pod}/{file}");
        foreach (var file in new[] { "cpuset.cpus", "cpuset.mems" }) Seed($"cpuset{Pod}/{file}");
        Seed($"memory{Pod}/memory.limit_in_bytes", "9223372036854771712\n");
        Seed($"memory{Pod}/memory.memsw.limit_in_bytes", "9223372036854771712\n");
        Seed($"hugetlb{Pod}/hugetlb.2MB.limit_in_bytes");
    }

    private void SeedV2()
    {
        foreach (var file in new[] { "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems", "memory.max", "memory.swap.max", "memory.high", "hugetlb.2MB.max" })
            Seed($"{Pod}/{file}");
    }

    private static readonly OciResources Full = new()
    {
        Cpu = new OciCpu { Shares = 1024, Quota = 150000, Period = 100000, Cpus = "0-1", Mems = "0" },
        Memory = new OciMemory { Limit = 268435456, Swap = 268435456 },
        HugepageLimits = [new OciHugepageLimit("2MB", 4194304)],
    };

    [Fact]
    public void V1_writes_each_controllers_files()
    {
        SeedV1();
        new CgroupWriter(cgroupV2: false, _root).Apply(Pod, Full);
        Assert.Equal("1024", Read($"cpu{Pod}/cpu.shares"));
        Assert.Equal("100000", Read($"cpu{Pod}/cpu.cfs_period_us"));
        Assert.Equal("150000", Read($"cpu{Pod}/cpu.cfs_quota_us"));
        Assert.Equal("0-1", Read($"cpuset{Pod}/cpuset.cpus"));
        Assert.Equal("0", Read($"cpuset{Pod}/cpuset.mems"));
        Assert.Equal("268435456", Read($"memory{Pod}/memory.limit_in_bytes"));
        Assert.Equal("268435456", Read($"memory{Pod}/memory.memsw.limit_in_bytes"));
        Assert.Equal("4194304", Read($"hugetlb{Pod}/hugetlb.2MB.limit_in_bytes"));
    }

    [Fact]
    public void V2_converts_shares_to_weight_and_swap_to_swap_alone()
    {
        SeedV2();
        var resources = Full with { Memory = new OciMemory { Limit = 268435456, Swap = 268435456 + 1048576 }, Unified = new() { ["memory.high"] = "200000000" } };
        new CgroupWriter(cgroupV2: true, _root).Apply(Pod, resources);
        Assert.Equal("39", Read($"{Pod}/cpu.weight"));
        Assert.Equal("150000 100000", Read($"{Pod}/cpu.max"));
        Assert.Equal("0-1", Read($"{Pod}/cpuset.cpus"));
        Assert.Equal("268435456", Read($"{Pod}/memory.max"));
        Assert.Equal("1048576", Read($"{Pod}/memory.swap.max"));
        Assert.Equal("4194304", Read($"{Pod}/hugetlb.2MB.max"));
        Assert.Equal("200000000", Read($"{Pod}/memory.high"));
    }

    [Fact]
    public void Unset_values_are_left_alone_and_unlimited_is_max()
    {
        SeedV2();
        Seed($"{Pod}/cpu.weight", "100");
        new CgroupWriter(cgroupV2: true, _root).Apply(Pod, new OciResources { Cpu = new OciCpu { Quota = -1 }, Memory = new OciMemory { Limit = -1 } });
        Assert.Equal("100", Read($"{Pod}/cpu.weight"));
        Assert.Equal("max", Read($"{Pod}/cpu.max"));
        Assert.Equal("max", Read($"{Pod}/memory.max"));
    }

    [Theory]
    [InlineData(2UL, 1UL)]
    [InlineData(1024UL, 39UL)]
    [InlineData(262144UL, 10000UL)]
    public void Shares_map_onto_the_weight_range(ulong shares, ulong weight) => Assert.Equal(weight, CgroupWriter.SharesToWeight(shares));

    [Fact]
    public void A_missing_cgroup_or_file_is_an_error_and_nothing_is_created()
    {
        var writer = new CgroupWriter(cgroupV2: true, _root);
        Assert.Throws<DirectoryNotFoundException>(() => writer.Apply(Pod, Full));
        Seed($"{Pod}/cpu.weight");
        var error = Assert.Throws<CgroupWriteException>(() => writer.Apply(Pod, Full));
        Assert.Equal("cpu.max", error.File);
        Assert.False(System.IO.File.Exists(File($"{Pod}/cpu.max")));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/b")]
    [InlineData(".hidden")]
    public void Unified_keys_are_file_names_in_the_cgroup(string key)
    {
        SeedV2();
        var error = Assert.Throws<CgroupWriteException>(() => new CgroupWriter(cgroupV2: true, _root).Apply(Pod, new OciResources { Unified = new() { [key] = "1" } }));
        Assert.Equal(key, error.File);
    }

    [Fact]
    public void V1_refuses_unified()
    {
        SeedV1();
        Assert.Throws<CgroupWriteException>(() => new CgroupWriter(cgroupV2: false, _root).Apply(Pod, new OciResources { Unified = new() { ["memory.high"] = "1" } }));
    }
}
