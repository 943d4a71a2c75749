namespace Berth.Cli.Pods;

/// <summary>What the kubelet knows of its node and berth play reads off it: capacity, cgroup version, its name.</summary>
internal sealed record NodeFacts(string NodeName, int Cpus, long MemoryBytes, bool CgroupV2, bool SwapAccounting, bool SystemdCgroups)
{
    public static NodeFacts Read(bool systemdCgroups)
    {
        long memory = 0;
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (!line.StartsWith("MemTotal:", StringComparison.Ordinal)) continue;
            memory = long.Parse(line["MemTotal:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            break;
        }
        return new NodeFacts(
            Environment.MachineName.ToLowerInvariant(),
            Environment.ProcessorCount,
            memory,
            File.Exists("/sys/fs/cgroup/cgroup.controllers"),
            File.Exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
            systemdCgroups);
    }
}
