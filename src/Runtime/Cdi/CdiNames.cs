namespace Berth.Runtime.Cdi;

/// <summary>
/// CDI's names (SPEC.md, "Kind" and "CDI Devices"): a kind <c>vendor/class</c>, and a fully qualified device
/// <c>vendor/class=name</c>. Vendor and class start with a letter, end with a letter or digit, and have letters,
/// digits, '_', '-' and '.' between; a device name starts and ends with a letter or digit and may also hold ':'.
/// </summary>
public static class CdiNames
{
    /// <summary>Splits <c>vendor/class=name</c>; null with the reason when it is no qualified device name.</summary>
    public static (string Vendor, string Class, string Name)? ParseQualified(string device, out string? error)
    {
        error = null;
        var equals = device.IndexOf('=', StringComparison.Ordinal);
        var slash = equals < 0 ? -1 : device.LastIndexOf('/', equals);
        if (device.Length == 0 || device[0] == '/' || equals <= 0 || slash <= 0 || equals == device.Length - 1)
        {
            error = "not a fully qualified CDI device name (vendor/class=name)";
            return null;
        }
        var vendor = device[..slash];
        var cls = device[(slash + 1)..equals];
        var name = device[(equals + 1)..];
        error = VendorOrClassError(vendor, "vendor") ?? VendorOrClassError(cls, "class") ?? DeviceNameError(name);
        return error is null ? (vendor, cls, name) : null;
    }

    public static string Qualified(string vendor, string cls, string name) => $"{vendor}/{cls}={name}";

    /// <summary>Splits a spec's kind at its slash; null when it has none (or nothing on one side).</summary>
    public static (string Vendor, string Class)? ParseKind(string kind)
    {
        var slash = kind.IndexOf('/', StringComparison.Ordinal);
        return slash <= 0 || slash == kind.Length - 1 ? null : (kind[..slash], kind[(slash + 1)..]);
    }

    public static string? VendorOrClassError(string name, string what)
    {
        if (name.Length == 0) return $"empty {what} name";
        if (!char.IsAsciiLetter(name[0])) return $"{what} '{name}' should start with a letter";
        for (var i = 1; i < name.Length - 1; i++)
        {
            if (!char.IsAsciiLetterOrDigit(name[i]) && name[i] is not ('_' or '-' or '.')) return $"invalid character '{name[i]}' in {what} '{name}'";
        }
        return char.IsAsciiLetterOrDigit(name[^1]) ? null : $"{what} '{name}' should end with a letter or digit";
    }

    public static string? DeviceNameError(string name)
    {
        if (name.Length == 0) return "empty device name";
        if (!char.IsAsciiLetterOrDigit(name[0])) return $"device name '{name}' should start with a letter or digit";
        for (var i = 1; i < name.Length - 1; i++)
        {
            if (!char.IsAsciiLetterOrDigit(name[i]) && name[i] is not ('_' or '-' or '.' or ':')) return $"invalid character '{name[i]}' in device name '{name}'";
        }
        return char.IsAsciiLetterOrDigit(name[^1]) ? null : $"device name '{name}' should end with a letter or digit";
    }
}
