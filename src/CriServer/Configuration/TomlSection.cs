using System.Globalization;
using Tomlyn;
using Tomlyn.Model;

namespace Berth.CriServer.Configuration;

/// <summary>
/// Reads typed values out of one TOML table and remembers which keys were read,
/// so that a misspelt or unknown key is an error that names its full dotted path.
/// </summary>
internal sealed class TomlSection(TomlTable table, string path)
{
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    private string KeyPath(string key) => path.Length == 0 ? key : $"{path}.{key}";

    /// <summary>A TOML document's root table; invalid TOML is a <see cref="ConfigException"/>.</summary>
    public static TomlSection Parse(string toml)
    {
        try
        {
            return new TomlSection(TomlSerializer.Deserialize(toml, TomlContext.Default.TomlTable) ?? [], "");
        }
        catch (TomlException e)
        {
            throw new ConfigException($"invalid TOML: {e.Message}");
        }
    }

    /// <summary>An <c>http://</c> or <c>https://</c> URL without a query, as registry endpoints are written.</summary>
    public Uri? Endpoint(string key) => String(key) is { Length: > 0 } text ? ParseEndpoint(KeyPath(key), text) : null;

    /// <summary>The same check for a value that is not under a key of its own (a table name, an array item).</summary>
    /// <param name="where">The value's full path, as the error names it.</param>
    /// <param name="text">The URL as written.</param>
    public static Uri ParseEndpoint(string where, string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Query.Length == 0
            ? uri
            : throw new ConfigException($"{where}: '{text}' is not an http:// or https:// URL");

    private bool TryGet(string key, out object value)
    {
        _read.Add(key);
        return table.TryGetValue(key, out value!);
    }

    public string? String(string key)
    {
        if (!TryGet(key, out var value)) return null;
        return value as string ?? throw TypeError(key, "a string", value);
    }

    public long? Integer(string key, long min, long max)
    {
        if (!TryGet(key, out var value)) return null;
        if (value is not long number) throw TypeError(key, "an integer", value);
        if (number < min || number > max)
            throw new ConfigException($"{KeyPath(key)}: {number} is out of range [{min}, {max}]");
        return number;
    }

    /// <summary>A number from 0 to 1, written with or without a decimal point.</summary>
    public double? Fraction(string key)
    {
        if (!TryGet(key, out var value)) return null;
        var number = value switch
        {
            double d => d,
            long l => l,
            _ => throw TypeError(key, "a number from 0 to 1", value),
        };
        return number is >= 0 and <= 1 ? number : throw new ConfigException($"{KeyPath(key)}: {number.ToString(System.Globalization.CultureInfo.InvariantCulture)} is out of range [0, 1]");
    }

    public bool? Boolean(string key)
    {
        if (!TryGet(key, out var value)) return null;
        return value is bool flag ? flag : throw TypeError(key, "true or false", value);
    }

    /// <summary>A Go-style duration string ("500ms", "10s", "1m30s"), as containerd's config uses.</summary>
    public TimeSpan? Duration(string key)
    {
        var text = String(key);
        if (text is null) return null;
        return DurationParser.TryParse(text, out var duration) && duration >= TimeSpan.Zero
            ? duration
            : throw new ConfigException($"{KeyPath(key)}: '{text}' is not a duration such as \"500ms\", \"10s\" or \"1m30s\"");
    }

    public T? Enum<T>(string key, IReadOnlyDictionary<string, T> names) where T : struct
    {
        var text = String(key);
        if (text is null) return null;
        return names.TryGetValue(text, out var parsed)
            ? parsed
            : throw new ConfigException($"{KeyPath(key)}: '{text}' is not one of {string.Join(", ", names.Keys)}");
    }

    public IReadOnlyList<string>? StringArray(string key)
    {
        if (!TryGet(key, out var value)) return null;
        if (value is not TomlArray array) throw TypeError(key, "an array of strings", value);
        var strings = new List<string>(array.Count);
        foreach (var item in array)
            strings.Add(item as string ?? throw new ConfigException($"{KeyPath(key)}: expected an array of strings, found {Describe(item!)}"));
        return strings;
    }

    /// <summary>A string or an array of strings (hosts.toml's <c>ca</c>), as a list.</summary>
    public IReadOnlyList<string>? StringOrStrings(string key) =>
        TryGet(key, out var value) && value is string one ? [one] : StringArray(key);

    /// <summary>Every key of this table as a sub-table, for maps such as <c>[images.registries."docker.io"]</c>.</summary>
    public IEnumerable<(string Key, TomlSection Section)> Tables()
    {
        foreach (var (key, _) in table)
            yield return (key, Section(key)!);
    }

    public TomlSection? Section(string key)
    {
        if (!TryGet(key, out var value)) return null;
        return value is TomlTable nested
            ? new TomlSection(nested, KeyPath(key))
            : throw TypeError(key, "a table", value);
    }

    /// <summary>Call after every known key was read: anything left over is a typo or a key of another version.</summary>
    public void RejectUnknownKeys()
    {
        foreach (var (key, _) in table)
        {
            if (!_read.Contains(key))
                throw new ConfigException($"unknown key '{KeyPath(key)}'");
        }
    }

    private ConfigException TypeError(string key, string expected, object actual) =>
        new($"{KeyPath(key)}: expected {expected}, got {Describe(actual)}");

    private static string Describe(object value) => value switch
    {
        string s => $"the string \"{s}\"",
        long l => $"the integer {l.ToString(CultureInfo.InvariantCulture)}",
        double d => $"the number {d.ToString(CultureInfo.InvariantCulture)}",
        bool b => b ? "true" : "false",
        TomlTable => "a table",
        TomlArray or TomlTableArray => "an array",
        _ => value.GetType().Name,
    };
}
