namespace Berth.Bench;

/// <summary>The pod cgroups the runtimes make under a benchmark's own cgroup parent, in every controller hierarchy.</summary>
internal static class BenchCgroups
{
    /// <summary>Cgroup directories under <paramref name="root"/> (e.g. "/berth-bench-scale-1234"), over all hierarchies.</summary>
    public static int Count(string root) =>
        Hierarchies(root).Sum(top => Directory.EnumerateDirectories(top, "*", SearchOption.AllDirectories).Count() + 1);

    /// <summary>Removes <paramref name="root"/> and every cgroup below it, leaves first; they are empty once the pods are gone.</summary>
    public static void Remove(string root)
    {
        foreach (var top in Hierarchies(root))
        {
            foreach (var cgroup in Directory.EnumerateDirectories(top, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
                Directory.Delete(cgroup);
            Directory.Delete(top);
        }
    }

    // cgroup v1 names some hierarchies twice (cpu and cpuacct link to cpu,cpuacct): each is counted once.
    private static List<string> Hierarchies(string root) =>
        [.. Directory.EnumerateDirectories("/sys/fs/cgroup").Where(h => new DirectoryInfo(h).LinkTarget is null).Select(h => h + root).Where(Directory.Exists)];
}
