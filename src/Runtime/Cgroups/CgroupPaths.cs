namespace Berth.Runtime.Cgroups;

/// <summary>
/// Where a container's cgroup is, for each cgroup driver. cgroupfs: a path, <c>/&lt;parent&gt;/&lt;id&gt;</c>.
/// systemd: the runtime's <c>slice:prefix:name</c> form, a transient scope <c>berth-&lt;id&gt;.scope</c> in the pod's
/// slice, which systemd nests by the dashes of its name (<c>kubepods-burstable-podX.slice</c> lives in
/// <c>/kubepods.slice/kubepods-burstable.slice/</c>), as systemd.slice(5) says.
/// </summary>
public static class CgroupPaths
{
    /// <summary>The slice of containers whose pod names none (cgroupfs: <c>/berth</c>).</summary>
    public const string DefaultSlice = "berth.slice";

    public const string ScopePrefix = "berth";

    /// <summary>The OCI <c>linux.cgroupsPath</c> of a container under its pod's cgroup parent.</summary>
    public static string ForContainer(string containerId, string? cgroupParent, bool systemd)
    {
        if (systemd) return $"{(string.IsNullOrEmpty(cgroupParent) ? DefaultSlice : cgroupParent)}:{ScopePrefix}:{containerId}";
        var parent = string.IsNullOrEmpty(cgroupParent) ? "/berth" : cgroupParent.TrimEnd('/');
        return (parent.StartsWith('/') ? parent : "/" + parent) + "/" + containerId;
    }

    /// <summary>A slice unit's name: <c>x.slice</c>, no slash, no empty part between dashes.</summary>
    public static bool IsSlice(string name) =>
        name.EndsWith(".slice", StringComparison.Ordinal) && !name.Contains('/', StringComparison.Ordinal)
        && (name == "-.slice" || name[..^6].Split('-').All(part => part.Length > 0));

    /// <summary>The directory below the cgroup root (starting with '/') that a cgroupsPath, a slice or a path names.</summary>
    public static string Resolve(string cgroupsPathOrParent)
    {
        var parts = cgroupsPathOrParent.Split(':');
        if (parts.Length == 3)
        {
            var slice = parts[0].Length == 0 ? DefaultSlice : parts[0];
            return $"{Expand(slice)}/{parts[1]}-{parts[2]}.scope";
        }
        if (IsSlice(cgroupsPathOrParent)) return Expand(cgroupsPathOrParent);
        return "/" + cgroupsPathOrParent.Trim('/');
    }

    private static string Expand(string slice)
    {
        if (slice == "-.slice") return "";
        var path = "";
        var name = slice[..^".slice".Length];
        var dash = -1;
        while ((dash = name.IndexOf('-', dash + 1)) >= 0) path += "/" + name[..dash] + ".slice";
        return path + "/" + slice;
    }
}
