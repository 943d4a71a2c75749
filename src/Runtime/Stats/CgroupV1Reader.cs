using System.Buffers.Text;

namespace Berth.Runtime.Stats;

/// <summary>
/// cgroup v1: one hierarchy per controller (<c>cpuacct</c>, <c>memory</c>, <c>pids</c>, <c>blkio</c>), the same
/// path under each. Memory figures use the hierarchical <c>total_*</c> counters of memory.stat, so a pod's cgroup
/// includes its containers. v1 keeps no pressure (PSI) per cgroup.
/// </summary>
public sealed class CgroupV1Reader(string root) : CgroupReader(root)
{
    // v1 reports "no limit" as the largest page-aligned counter value, which is far above any real memory size.
    private const ulong Unlimited = 1UL << 62;

    public override CgroupSample? Read(string cgroupPath)
    {
        var memory = $"{Root}/memory{cgroupPath}/";
        var cpu = $"{Root}/cpuacct{cgroupPath}/cpuacct.usage";
        var timestamp = Now();
        var cpuUsage = ReadNumber(cpu);
        var usage = ReadNumber(memory + "memory.usage_in_bytes");
        if (cpuUsage is null && usage is null) return null;

        var stat = ReadFile(memory + "memory.stat", MemoryStat.Parse);
        var limit = Limit(ReadNumber(memory + "memory.limit_in_bytes"));
        ulong? swapUsage = null, swapLimit = null;
        if (usage is { } used && ReadNumber(memory + "memory.memsw.usage_in_bytes") is { } withSwap)
        {
            // memsw counts memory and swap together.
            swapUsage = withSwap > used ? withSwap - used : 0;
            if (Limit(ReadNumber(memory + "memory.memsw.limit_in_bytes")) is { } both && limit is { } memoryLimit)
                swapLimit = both > memoryLimit ? both - memoryLimit : 0;
        }
        var io = ReadFile($"{Root}/blkio{cgroupPath}/blkio.throttle.io_service_bytes", IoServiceBytes.Parse);
        return new CgroupSample
        {
            Timestamp = timestamp,
            CpuUsageNanoseconds = cpuUsage,
            MemoryUsageBytes = usage,
            MemoryWorkingSetBytes = usage is { } u ? WorkingSet(u, stat?.InactiveFile) : null,
            MemoryRssBytes = stat?.Rss,
            PageFaults = stat?.PageFaults,
            MajorPageFaults = stat?.MajorPageFaults,
            MemoryLimitBytes = limit,
            SwapUsageBytes = swapUsage,
            SwapLimitBytes = swapLimit,
            Processes = ReadNumber($"{Root}/pids{cgroupPath}/pids.current"),
            IoReadBytes = io?.Read,
            IoWriteBytes = io?.Write,
        };
    }

    internal static ulong WorkingSet(ulong usage, ulong? inactiveFile) =>
        inactiveFile is { } inactive ? usage > inactive ? usage - inactive : 0 : usage;

    private static ulong? Limit(ulong? value) => value is { } v && v < Unlimited ? v : null;

    internal sealed record MemoryStat(ulong? InactiveFile, ulong? Rss, ulong? PageFaults, ulong? MajorPageFaults)
    {
        public static MemoryStat Parse(ReadOnlySpan<byte> content) => new(
            KeyedValue(content, "total_inactive_file"u8),
            KeyedValue(content, "total_rss"u8),
            KeyedValue(content, "total_pgfault"u8),
            KeyedValue(content, "total_pgmajfault"u8));
    }

    /// <summary>blkio.throttle.io_service_bytes: <c>8:0 Read 4096</c> per device and operation, then <c>Total N</c>.</summary>
    internal sealed record IoServiceBytes(ulong Read, ulong Write)
    {
        public static IoServiceBytes Parse(ReadOnlySpan<byte> content)
        {
            ulong read = 0, write = 0;
            foreach (var line in Lines(content))
            {
                // Per-device lines have three fields; the closing "Total N" has two and is skipped.
                var fields = line.Split((byte)' ');
                if (!fields.MoveNext() || !fields.MoveNext()) continue;
                var operation = line[fields.Current];
                if (!fields.MoveNext() || !Utf8Parser.TryParse(line[fields.Current], out ulong bytes, out _)) continue;
                if (operation.SequenceEqual("Read"u8)) read += bytes;
                else if (operation.SequenceEqual("Write"u8)) write += bytes;
            }
            return new IoServiceBytes(read, write);
        }
    }
}
