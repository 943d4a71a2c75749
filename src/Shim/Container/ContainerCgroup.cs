using System.Globalization;
using System.Text;
using Berth.Shim.Native;

namespace Berth.Shim.Container;

/// <summary>Where the container's processes are in cgroup v2: the directory its init is in (crun nests it in &lt;scope&gt;/container).</summary>
internal static class ContainerCgroup
{
    /// <summary>The cgroup v2 directory of a process (<c>/sys/fs/cgroup/…</c>) with a memory controller, or null on cgroup v1 or when it is gone.</summary>
    public static string? DirectoryOf(int pid)
    {
        string cgroups;
        try
        {
            cgroups = Encoding.UTF8.GetString(Fd.ReadFile($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cgroup"));
        }
        catch (IOException)
        {
            return null;
        }
        foreach (var line in cgroups.Split('\n'))
        {
            if (!line.StartsWith("0::", StringComparison.Ordinal)) continue;
            var directory = "/sys/fs/cgroup" + line[3..].TrimEnd('/');
            // On a hybrid host the unified hierarchy is mounted elsewhere and has no memory controller.
            return File.Exists(Path.Combine(directory, Berth.Cgroups.MemoryEvents.V2File)) ? directory : null;
        }
        return null;
    }
}
