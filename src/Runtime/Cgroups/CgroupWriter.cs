using System.Globalization;
using System.Text;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Cgroups;

/// <summary>
/// Writes OCI resources into an existing cgroup's files, in the cgroupfs layout of v1 (a hierarchy per controller)
/// or v2 (one unified tree). <c>runc update</c> does this for a container; the pod's cgroup has no runc container of
/// its own, so UpdatePodSandboxResources writes it here. A value left null is left as it is.
/// </summary>
public sealed class CgroupWriter(bool cgroupV2, string root = "/sys/fs/cgroup")
{
    private readonly string _root = root.TrimEnd('/');

    /// <summary>Applies <paramref name="resources"/> (cpu, memory, hugepages, unified) to <paramref name="cgroupPath"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The cgroup does not exist.</exception>
    /// <exception cref="CgroupWriteException">The kernel refused a value.</exception>
    public void Apply(string cgroupPath, OciResources resources)
    {
        var path = "/" + cgroupPath.Trim('/');
        if (cgroupV2) ApplyV2($"{_root}{path}/", resources);
        else ApplyV1(path, resources);
    }

    private void ApplyV1(string path, OciResources resources)
    {
        var memory = $"{_root}/memory{path}/";
        if (!Directory.Exists(memory) && !Directory.Exists($"{_root}/cpu{path}"))
            throw new DirectoryNotFoundException($"cgroup {path} does not exist");
        if (resources.Cpu is { } cpu)
        {
            var directory = $"{_root}/cpu{path}/";
            if (cpu.Shares is { } shares) Write(directory + "cpu.shares", shares);
            WritePeriodAndQuota(directory, cpu.Period, cpu.Quota);
            WriteCpuset($"{_root}/cpuset{path}/", cpu);
        }
        if (resources.Memory is { } limits)
        {
            // memsw (memory+swap) may never sit below the memory limit: raise it first when the limit goes above it.
            var raisesAboveSwap = limits.Limit is { } limit && (limit == -1 || limit > ReadLong(memory + "memory.memsw.limit_in_bytes"));
            if (limits.Swap is { } swap && raisesAboveSwap) Write(memory + "memory.memsw.limit_in_bytes", swap);
            if (limits.Limit is { } memoryLimit) Write(memory + "memory.limit_in_bytes", memoryLimit);
            if (limits.Swap is { } swapLimit && !raisesAboveSwap) Write(memory + "memory.memsw.limit_in_bytes", swapLimit);
        }
        foreach (var hugepages in resources.HugepageLimits ?? [])
            Write($"{_root}/hugetlb{path}/hugetlb.{hugepages.PageSize}.limit_in_bytes", hugepages.Limit);
        if (resources.Unified is { Count: > 0 }) throw new CgroupWriteException("unified", "needs cgroup v2, and this node runs cgroup v1");
    }

    private static void WritePeriodAndQuota(string directory, ulong? period, long? quota)
    {
        // The kernel checks quota against period as each is written; if the period does not fit the old quota, set the quota first.
        try
        {
            if (period is { } p) Write(directory + "cpu.cfs_period_us", p);
        }
        catch (CgroupWriteException) when (quota is not null)
        {
            Write(directory + "cpu.cfs_quota_us", quota.Value);
            Write(directory + "cpu.cfs_period_us", period!.Value);
            return;
        }
        if (quota is { } q) Write(directory + "cpu.cfs_quota_us", q);
    }

    private static void ApplyV2(string directory, OciResources resources)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"cgroup {directory} does not exist");
        if (resources.Cpu is { } cpu)
        {
            if (cpu.Shares is { } shares) Write(directory + "cpu.weight", SharesToWeight(shares));
            if (cpu.Quota is not null || cpu.Period is not null) Write(directory + "cpu.max", CpuMax(cpu.Quota, cpu.Period));
            WriteCpuset(directory, cpu);
        }
        if (resources.Memory is { } memory)
        {
            if (memory.Limit is { } limit) Write(directory + "memory.max", limit == -1 ? "max" : Number(limit));
            // OCI's swap is memory+swap; v2 keeps swap alone.
            if (memory.Swap is { } swap)
            {
                var swapOnly = swap == -1 ? "max" : memory.Limit is { } l and > 0 ? Number(Math.Max(0, swap - l)) : null;
                if (swapOnly is not null && File.Exists(directory + "memory.swap.max")) Write(directory + "memory.swap.max", swapOnly);
            }
        }
        foreach (var hugepages in resources.HugepageLimits ?? [])
            Write($"{directory}hugetlb.{hugepages.PageSize}.max", hugepages.Limit);
        foreach (var (file, value) in resources.Unified ?? [])
        {
            if (file.Length == 0 || file.Contains('/', StringComparison.Ordinal) || file.StartsWith('.'))
                throw new CgroupWriteException(file, "is not a cgroup file name");
            Write(directory + file, value);
        }
    }

    private static void WriteCpuset(string directory, OciCpu cpu)
    {
        if (cpu.Cpus is { Length: > 0 } cpus) Write(directory + "cpuset.cpus", cpus);
        if (cpu.Mems is { Length: > 0 } mems) Write(directory + "cpuset.mems", mems);
    }

    /// <summary>cgroup v1 shares (2..262144) onto v2's weight (1..10000), the conversion runc and crun use.</summary>
    internal static ulong SharesToWeight(ulong shares) => shares <= 2 ? 1 : 1 + ((Math.Min(shares, 262144) - 2) * 9999 / 262142);

    /// <summary>cpu.max is "<c>$QUOTA $PERIOD</c>", with <c>max</c> for no quota; the period may be left out.</summary>
    internal static string CpuMax(long? quota, ulong? period)
    {
        var text = quota is { } q and > 0 ? Number(q) : "max";
        return period is { } p and > 0 ? $"{text} {Number(p)}" : text;
    }

    private static long ReadLong(string path)
    {
        try
        {
            return long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : long.MaxValue;
        }
        catch (IOException)
        {
            return long.MaxValue;
        }
    }

    private static void Write(string path, long value) => Write(path, Number(value));

    private static void Write(string path, ulong value) => Write(path, value.ToString(CultureInfo.InvariantCulture));

    private static void Write(string path, string value)
    {
        try
        {
            // cgroupfs files exist or the controller is absent: never create one.
            using var handle = File.OpenHandle(path, FileMode.Truncate, FileAccess.Write);
            RandomAccess.Write(handle, Encoding.ASCII.GetBytes(value), 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CgroupWriteException(Path.GetFileName(path), $"refused {value}: {e.Message}", e);
        }
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Number(ulong value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The kernel refused a value for a cgroup file, or the file does not exist on this node.</summary>
public sealed class CgroupWriteException(string file, string problem, Exception? inner = null) : Exception($"{file}: {problem}", inner)
{
    public string File { get; } = file;
}
