using Berth.Runtime.Stats;

namespace Berth.Runtime.Tests;

/// <summary>
/// Both cgroup readers on fixture trees whose files follow the kernel's formats (Documentation/admin-guide/cgroup-v2.rst
/// and the v1 memory, cpuacct, pids and blkio documents).
/// </summary>
public sealed class CgroupReaderTests : IDisposable
{
    private const string Path = "/kubepods/pod1/c1";
    private readonly string _root = Directory.CreateTempSubdirectory("berth-cgroup-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Write(string relative, string content)
    {
        var file = System.IO.Path.Combine(_root, relative.TrimStart('/'));
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
        File.WriteAllText(file, content);
    }

    private void WriteV2(string memoryMax = "max")
    {
        Write($"{Path}/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n");
        Write($"{Path}/memory.current", "75497472\n");
        Write($"{Path}/memory.stat",
            "anon 52428800\nfile 20971520\nkernel 1048576\nkernel_stack 65536\npagetables 131072\nsock 0\nshmem 0\nfile_mapped 4096\n" +
            "file_dirty 0\nanon_thp 2097152\ninactive_anon 52428800\nactive_anon 0\ninactive_file 16777216\nactive_file 4194304\n" +
            "unevictable 0\nslab_reclaimable 0\nslab 0\nworkingset_refault_anon 0\npgscan 0\npgsteal 0\npgfault 13000\npgmajfault 12\n");
        Write($"{Path}/memory.max", memoryMax + "\n");
        Write($"{Path}/memory.swap.current", "4096\n");
        Write($"{Path}/memory.swap.max", "max\n");
        Write($"{Path}/pids.current", "3\n");
        Write($"{Path}/io.stat",
            "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n" +
            "8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n");
        Write($"{Path}/cpu.pressure", "some avg10=1.50 avg60=0.75 avg300=0.20 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        Write($"{Path}/memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n");
        Write($"{Path}/io.pressure", "some avg10=12.25 avg60=3.00 avg300=1.00 total=999\nfull avg10=10.00 avg60=2.50 avg300=0.75 total=888\n");
    }

    [Fact]
    public void V2_reads_cpu_memory_swap_pids_io_and_pressure()
    {
        WriteV2(memoryMax: "104857600");
        var sample = new CgroupV2Reader(_root).Read(Path)!;

        Assert.Equal(2_500_000_000UL, sample.CpuUsageNanoseconds);
        Assert.Equal(75497472UL, sample.MemoryUsageBytes);
        Assert.Equal(75497472UL - 16777216UL, sample.MemoryWorkingSetBytes); // usage - inactive_file
        Assert.Equal(52428800UL, sample.MemoryRssBytes); // anon, not anon_thp or inactive_anon
        Assert.Equal(13000UL, sample.PageFaults);
        Assert.Equal(12UL, sample.MajorPageFaults);
        Assert.Equal(104857600UL, sample.MemoryLimitBytes);
        Assert.Equal(104857600UL - (75497472UL - 16777216UL), sample.MemoryAvailableBytes);
        Assert.Equal(4096UL, sample.SwapUsageBytes);
        Assert.Null(sample.SwapLimitBytes); // "max"
        Assert.Null(sample.SwapAvailableBytes);
        Assert.Equal(3UL, sample.Processes);
        Assert.Equal(1459200UL + 90430464UL, sample.IoReadBytes);
        Assert.Equal(314773504UL + 299008000UL, sample.IoWriteBytes);
        Assert.Equal(new PressureData(123456, 1.5, 0.75, 0.2), sample.CpuPressure!.Some);
        Assert.Equal(new PressureData(7, 0, 0, 0), sample.MemoryPressure!.Full);
        Assert.Equal(new PressureData(888, 10, 2.5, 0.75), sample.IoPressure!.Full);
    }

    [Fact]
    public void V2_without_a_limit_reports_no_available_bytes()
    {
        WriteV2();
        var sample = new CgroupV2Reader(_root).Read(Path)!;
        Assert.Null(sample.MemoryLimitBytes);
        Assert.Null(sample.MemoryAvailableBytes);
    }

    [Fact]
    public void V2_cpu_pressure_without_a_full_line_is_kept()
    {
        WriteV2();
        Write($"{Path}/cpu.pressure", "some avg10=0.10 avg60=0.20 avg300=0.30 total=5\n");
        var pressure = new CgroupV2Reader(_root).Read(Path)!.CpuPressure!;
        Assert.Equal(new PressureData(5, 0.1, 0.2, 0.3), pressure.Some);
        Assert.Null(pressure.Full);
    }

    [Fact]
    public void V2_without_psi_or_io_leaves_them_null()
    {
        Write($"{Path}/cpu.stat", "usage_usec 10\n");
        Write($"{Path}/memory.current", "100\n");
        var sample = new CgroupV2Reader(_root).Read(Path)!;
        Assert.Equal(10_000UL, sample.CpuUsageNanoseconds);
        Assert.Equal(100UL, sample.MemoryWorkingSetBytes); // no memory.stat: nothing to subtract
        Assert.Null(sample.CpuPressure);
        Assert.Null(sample.IoReadBytes);
        Assert.Null(sample.Processes);
    }

    [Fact]
    public void A_missing_cgroup_reads_as_null()
    {
        Assert.Null(new CgroupV2Reader(_root).Read("/gone"));
        Assert.Null(new CgroupV1Reader(_root).Read("/gone"));
    }

    [Fact]
    public void Working_set_never_goes_below_zero()
    {
        Write($"{Path}/cpu.stat", "usage_usec 1\n");
        Write($"{Path}/memory.current", "4096\n");
        Write($"{Path}/memory.stat", "inactive_file 8192\n");
        Assert.Equal(0UL, new CgroupV2Reader(_root).Read(Path)!.MemoryWorkingSetBytes);
    }

    private void WriteV1(string limit, string memswLimit)
    {
        Write($"/cpuacct{Path}/cpuacct.usage", "1234567890\n");
        Write($"/memory{Path}/memory.usage_in_bytes", "62914560\n");
        Write($"/memory{Path}/memory.stat",
            "cache 10485760\nrss 41943040\nrss_huge 0\nshmem 0\nmapped_file 0\npgfault 100\npgmajfault 1\ninactive_anon 0\n" +
            "active_anon 41943040\ninactive_file 8388608\nactive_file 2097152\nhierarchical_memory_limit 104857600\n" +
            "total_cache 10485760\ntotal_rss 41943040\ntotal_rss_huge 0\ntotal_pgfault 2500\ntotal_pgmajfault 3\n" +
            "total_inactive_anon 0\ntotal_active_anon 41943040\ntotal_inactive_file 9437184\ntotal_active_file 1048576\n");
        Write($"/memory{Path}/memory.limit_in_bytes", limit + "\n");
        Write($"/memory{Path}/memory.memsw.usage_in_bytes", "67108864\n");
        Write($"/memory{Path}/memory.memsw.limit_in_bytes", memswLimit + "\n");
        Write($"/pids{Path}/pids.current", "5\n");
        Write($"/blkio{Path}/blkio.throttle.io_service_bytes",
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 12288\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\n" +
            "8:16 Read 1000\n8:16 Write 0\n8:16 Sync 0\n8:16 Async 1000\n8:16 Discard 0\n8:16 Total 1000\nTotal 13288\n");
    }

    [Fact]
    public void V1_reads_the_hierarchical_counters_of_each_controller()
    {
        WriteV1("104857600", "209715200");
        var sample = new CgroupV1Reader(_root).Read(Path)!;

        Assert.Equal(1234567890UL, sample.CpuUsageNanoseconds);
        Assert.Equal(62914560UL, sample.MemoryUsageBytes);
        Assert.Equal(62914560UL - 9437184UL, sample.MemoryWorkingSetBytes); // total_inactive_file, not inactive_file
        Assert.Equal(41943040UL, sample.MemoryRssBytes);
        Assert.Equal(2500UL, sample.PageFaults);
        Assert.Equal(3UL, sample.MajorPageFaults);
        Assert.Equal(104857600UL, sample.MemoryLimitBytes);
        Assert.Equal(67108864UL - 62914560UL, sample.SwapUsageBytes); // memsw counts memory and swap
        Assert.Equal(104857600UL, sample.SwapLimitBytes);
        Assert.Equal(5UL, sample.Processes);
        Assert.Equal(5096UL, sample.IoReadBytes);
        Assert.Equal(8192UL, sample.IoWriteBytes);
        Assert.Null(sample.CpuPressure); // v1 keeps no PSI per cgroup
    }

    [Fact]
    public void V1_unlimited_is_no_limit()
    {
        WriteV1("9223372036854771712", "9223372036854771712");
        var sample = new CgroupV1Reader(_root).Read(Path)!;
        Assert.Null(sample.MemoryLimitBytes);
        Assert.Null(sample.MemoryAvailableBytes);
        Assert.Null(sample.SwapLimitBytes);
    }

    [Fact]
    public void Cpu_rate_comes_from_two_readings_at_least_a_second_apart()
    {
        var tracker = new CpuRateTracker();
        const long second = 1_000_000_000;
        Assert.Null(tracker.Rate("c", 10 * second, 5 * second)); // first reading: a baseline, no rate yet
        Assert.Equal(500_000_000UL, tracker.Rate("c", 12 * second, 6 * second)); // half a core over 2 s
        tracker.Observe("c", 20 * second, 10 * second);
        tracker.Observe("c", 30 * second, 20 * second);
        // 100 ms after the last sample: rated against the one before, not over a sliver of time.
        Assert.Equal(1_000_000_000UL, (ulong)Math.Round(tracker.Rate("c", 30 * second + second / 10, 20 * second + second / 10)!.Value / 1e6) * 1_000_000);
        Assert.Equal(2_000_000_000UL, tracker.Rate("c", 32 * second, 24 * second)); // two cores since the last sample
        Assert.Null(tracker.Rate("c", 33 * second, 1)); // counter went back: a new cgroup
    }
}
