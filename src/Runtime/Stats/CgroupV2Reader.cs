using System.Buffers.Text;

namespace Berth.Runtime.Stats;

/// <summary>
/// cgroup v2: one unified tree; every controller's files sit in the cgroup's own directory, and their counters
/// already include the cgroup's descendants. Pressure (PSI) files are there when the kernel has PSI enabled.
/// </summary>
public sealed class CgroupV2Reader(string root) : CgroupReader(root)
{
    public override CgroupSample? Read(string cgroupPath)
    {
        var directory = $"{Root}{cgroupPath}/";
        var timestamp = Now();
        var cpu = ReadFile(directory + "cpu.stat", CpuStat.Parse);
        var usage = ReadNumber(directory + "memory.current");
        if (cpu is null && usage is null) return null;

        var stat = ReadFile(directory + "memory.stat", MemoryStat.Parse);
        var io = ReadFile(directory + "io.stat", IoStat.Parse);
        return new CgroupSample
        {
            Timestamp = timestamp,
            CpuUsageNanoseconds = cpu?.UsageMicroseconds * 1000,
            MemoryUsageBytes = usage,
            MemoryWorkingSetBytes = usage is { } u ? CgroupV1Reader.WorkingSet(u, stat?.InactiveFile) : null,
            MemoryRssBytes = stat?.Anon,
            PageFaults = stat?.PageFaults,
            MajorPageFaults = stat?.MajorPageFaults,
            MemoryLimitBytes = ReadNumber(directory + "memory.max"),
            SwapUsageBytes = ReadNumber(directory + "memory.swap.current"),
            SwapLimitBytes = ReadNumber(directory + "memory.swap.max"),
            Processes = ReadNumber(directory + "pids.current"),
            IoReadBytes = io?.Read,
            IoWriteBytes = io?.Write,
            CpuPressure = ReadPressure(directory + "cpu.pressure"),
            MemoryPressure = ReadPressure(directory + "memory.pressure"),
            IoPressure = ReadPressure(directory + "io.pressure"),
        };
    }

    internal sealed record CpuStat(ulong? UsageMicroseconds)
    {
        public static CpuStat Parse(ReadOnlySpan<byte> content) => new(KeyedValue(content, "usage_usec"u8));
    }

    /// <summary>v2 has no rss counter; anonymous memory is what RSS means here (as cAdvisor and containerd take it).</summary>
    internal sealed record MemoryStat(ulong? InactiveFile, ulong? Anon, ulong? PageFaults, ulong? MajorPageFaults)
    {
        public static MemoryStat Parse(ReadOnlySpan<byte> content) => new(
            KeyedValue(content, "inactive_file"u8),
            KeyedValue(content, "anon"u8),
            KeyedValue(content, "pgfault"u8),
            KeyedValue(content, "pgmajfault"u8));
    }

    /// <summary>io.stat: <c>8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0</c> per device.</summary>
    internal sealed record IoStat(ulong Read, ulong Write)
    {
        public static IoStat Parse(ReadOnlySpan<byte> content)
        {
            ulong read = 0, write = 0;
            foreach (var line in Lines(content))
            {
                if (TryField(line, "rbytes"u8, out var r) && Utf8Parser.TryParse(r, out ulong rbytes, out _)) read += rbytes;
                if (TryField(line, "wbytes"u8, out var w) && Utf8Parser.TryParse(w, out ulong wbytes, out _)) write += wbytes;
            }
            return new IoStat(read, write);
        }
    }
}
