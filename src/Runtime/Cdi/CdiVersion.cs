namespace Berth.Runtime.Cdi;

/// <summary>
/// The spec versions CDI has released and the fields each introduced (SPEC.md's table): a spec must declare at least
/// the version of the newest field it uses, or it is refused, as the reference loader refuses it.
/// </summary>
public static class CdiVersion
{
    /// <summary>Newest first, as the reference keeps them; 0.1.0 and 0.2.0 are known but predate every rule.</summary>
    private static readonly string[] Known = ["1.1.0", "1.0.0", "0.8.0", "0.7.0", "0.6.0", "0.5.0", "0.4.0", "0.3.0", "0.2.0", "0.1.0"];

    /// <summary>An error when the spec's cdiVersion is no released version or is older than what the spec uses.</summary>
    public static string? Check(CdiSpecDocument spec)
    {
        var declared = spec.Version.StartsWith('v') ? spec.Version[1..] : spec.Version;
        var index = Array.IndexOf(Known, declared);
        if (index < 0) return $"cdiVersion '{spec.Version}' is no CDI spec version ({string.Join(", ", Known.Reverse())})";
        var (required, why) = Required(spec);
        return Array.IndexOf(Known, required) < index ? $"cdiVersion {declared} is too old: {why} needs at least {required}" : null;
    }

    /// <summary>The oldest version that has every field the spec uses, and the field that needs it.</summary>
    public static (string Version, string Why) Required(CdiSpecDocument spec)
    {
        var devices = spec.Devices ?? [];
        var edits = devices.Select(d => d.ContainerEdits).Prepend(spec.ContainerEdits).OfType<CdiEditsDocument>().ToList();
        if (edits.Any(e => e.IntelRdt is { Schemata: not null } or { EnableMonitoring: true })) return ("1.1.0", "intelRdt.schemata or intelRdt.enableMonitoring");
        if (edits.Any(e => e.NetDevices is { Count: > 0 })) return ("1.1.0", "netDevices");
        if (edits.Any(e => e.IntelRdt is not null)) return ("0.7.0", "intelRdt");
        if (edits.Any(e => e.AdditionalGids is { Count: > 0 })) return ("0.7.0", "additionalGids");
        if (spec.Annotations is { Count: > 0 } || devices.Any(d => d.Annotations is { Count: > 0 })) return ("0.6.0", "annotations");
        if (CdiNames.ParseKind(spec.Kind) is { } kind && kind.Class.Contains('.', StringComparison.Ordinal)) return ("0.6.0", "a dot in the kind's class");
        if (devices.Any(d => d.Name.Length > 0 && char.IsAsciiDigit(d.Name[0]))) return ("0.5.0", "a device name starting with a digit");
        if (edits.Any(e => e.DeviceNodes?.Any(n => !string.IsNullOrEmpty(n.HostPath)) == true)) return ("0.5.0", "deviceNodes[].hostPath");
        if (edits.Any(e => e.Mounts?.Any(m => !string.IsNullOrEmpty(m.Type)) == true)) return ("0.4.0", "mounts[].type");
        return ("0.3.0", "");
    }
}
