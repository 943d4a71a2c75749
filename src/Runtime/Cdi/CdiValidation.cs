namespace Berth.Runtime.Cdi;

/// <summary>The checks CDI makes of a spec's container edits and annotations when it loads; each returns the error or null.</summary>
internal static class CdiValidation
{
    public static readonly string[] HookNames = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

    /// <summary>"none" asks for a device node without cgroup access.</summary>
    public const string NoPermissions = "none";

    public static string? EditsError(CdiEditsDocument edits)
    {
        if (EnvError(edits.Env, "env") is { } env) return env;
        for (var i = 0; i < (edits.DeviceNodes?.Count ?? 0); i++)
        {
            var node = edits.DeviceNodes![i];
            var field = $"deviceNodes[{i}]";
            if (node.Path.Length == 0) return $"{field}.path is empty";
            if (node.Type is not (null or "" or "b" or "c" or "u" or "p")) return $"{field} '{node.Path}': type '{node.Type}' is not b, c, u or p";
            if (node.Permissions is { Length: > 0 } access && access != NoPermissions && access.Any(c => c is not ('r' or 'w' or 'm')))
                return $"{field} '{node.Path}': permissions '{access}' are not a combination of r, w and m (or none)";
        }
        for (var i = 0; i < (edits.Hooks?.Count ?? 0); i++)
        {
            var hook = edits.Hooks![i];
            if (!HookNames.Contains(hook.HookName)) return $"hooks[{i}]: '{hook.HookName}' is no OCI hook ({string.Join(", ", HookNames)})";
            if (hook.Path.Length == 0) return $"hooks[{i}] ({hook.HookName}): the path is empty";
            if (EnvError(hook.Env, $"hooks[{i}].env") is { } hookEnv) return hookEnv;
            if (hook.Timeout is <= 0) return $"hooks[{i}] ({hook.HookName}): timeout {hook.Timeout} must be greater than zero";
        }
        for (var i = 0; i < (edits.Mounts?.Count ?? 0); i++)
        {
            var mount = edits.Mounts![i];
            if (mount.HostPath.Length == 0) return $"mounts[{i}].hostPath is empty";
            if (mount.ContainerPath.Length == 0) return $"mounts[{i}].containerPath is empty";
        }
        if (edits.IntelRdt?.ClosId is { } clos && clos != "/" && (clos.Length >= 4096 || clos is "." or ".." || clos.AsSpan().IndexOfAny('/', '\n') >= 0))
            return $"intelRdt.closID '{clos}' is not a file name";
        var hosts = new HashSet<string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < (edits.NetDevices?.Count ?? 0); i++)
        {
            var device = edits.NetDevices![i];
            if (device.HostInterfaceName.Length == 0) return $"netDevices[{i}].hostInterfaceName is empty";
            if (device.Name.Length == 0) return $"netDevices[{i}].name is empty";
            if (!hosts.Add(device.HostInterfaceName)) return $"netDevices[{i}]: host interface '{device.HostInterfaceName}' is moved twice";
            if (!names.Add(device.Name)) return $"netDevices[{i}]: interface name '{device.Name}' is used twice";
        }
        return null;
    }

    private static string? EnvError(List<string>? env, string field)
    {
        for (var i = 0; i < (env?.Count ?? 0); i++)
        {
            if (env![i].IndexOf('=', StringComparison.Ordinal) <= 0) return $"{field}[{i}]: '{env[i]}' is not NAME=VALUE";
        }
        return null;
    }

    /// <summary>Kubernetes' rules for annotation keys (an optional DNS-subdomain prefix and a name of 63 at most), and 256 KiB in all.</summary>
    public static string? AnnotationsError(Dictionary<string, string>? annotations)
    {
        if (annotations is null) return null;
        long size = 0;
        foreach (var (key, value) in annotations)
        {
            size += key.Length + value.Length;
            var slash = key.LastIndexOf('/');
            var name = slash < 0 ? key : key[(slash + 1)..];
            var prefix = slash < 0 ? null : key[..slash];
            if (name.Length is 0 or > 63 || !char.IsAsciiLetterOrDigit(name[0]) || !char.IsAsciiLetterOrDigit(name[^1])
                || name.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')))
                return $"key '{key}' is not a qualified name (63 characters at most, alphanumerics and '-', '_', '.' between)";
            if (prefix is not null && (prefix.Length is 0 or > 253 || prefix.Split('.').Any(label =>
                    label.Length is 0 or > 63 || !char.IsAsciiLetterLower(label[0]) && !char.IsAsciiDigit(label[0])
                    || !char.IsAsciiLetterLower(label[^1]) && !char.IsAsciiDigit(label[^1])
                    || label.Any(c => !char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c) && c != '-'))))
                return $"key '{key}': the prefix is not a DNS subdomain";
        }
        return size > 256 * 1024 ? $"{size} bytes in all, over 256 KiB" : null;
    }
}
