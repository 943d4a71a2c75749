using System.Text.Json;

namespace Berth.Runtime.Cdi;

/// <summary>A CDI spec file that loaded and validated: its vendor and class, its devices by name, and where it came from.</summary>
public sealed class CdiSpec
{
    private CdiSpec(CdiSpecDocument document, string vendor, string cls, string path, int priority)
    {
        Document = document;
        Vendor = vendor;
        Class = cls;
        Path = path;
        Priority = priority;
    }

    public CdiSpecDocument Document { get; }
    public string Vendor { get; }
    public string Class { get; }
    public string Path { get; }

    /// <summary>The index of the spec's directory among the configured ones: a later directory's device wins.</summary>
    public int Priority { get; }

    public IReadOnlyDictionary<string, CdiDeviceDocument> Devices { get; private set; } = new Dictionary<string, CdiDeviceDocument>();

    /// <summary>Reads and checks a spec file (JSON, or YAML for <c>.yaml</c>); a <see cref="FormatException"/> says why it is refused.</summary>
    public static CdiSpec Load(string path, int priority)
    {
        var bytes = File.ReadAllBytes(path);
        CdiSpecDocument? document;
        try
        {
            document = path.EndsWith(".yaml", StringComparison.Ordinal) ? FromYaml(bytes) : JsonSerializer.Deserialize(bytes, CdiJsonContext.Default.CdiSpecDocument);
        }
        catch (JsonException e)
        {
            throw new FormatException($"{(e.Path is { Length: > 2 } at ? at[2..] + ": " : "")}{FirstSentence(e.Message)}", e);
        }
        if (document is null) throw new FormatException("the file holds no spec");
        return Validate(document, path, priority);
    }

    private static CdiSpecDocument? FromYaml(byte[] bytes)
    {
        var documents = Berth.Yaml.YamlToJson.Documents(System.Text.Encoding.UTF8.GetString(bytes));
        if (documents.Count != 1) throw new FormatException($"a spec is one YAML document, and this file holds {documents.Count}");
        return documents[0]?.Deserialize(CdiJsonContext.Default.CdiSpecDocument);
    }

    private static string FirstSentence(string message) => message.IndexOf(". ", StringComparison.Ordinal) is var end and > 0 ? message[..end] : message;

    private static CdiSpec Validate(CdiSpecDocument document, string path, int priority)
    {
        if (CdiVersion.Check(document) is { } versionError) throw new FormatException(versionError);
        if (CdiNames.ParseKind(document.Kind) is not var (vendor, cls))
            throw new FormatException($"kind '{document.Kind}' is not vendor/class");
        if ((CdiNames.VendorOrClassError(vendor, "vendor") ?? CdiNames.VendorOrClassError(cls, "class")) is { } kindError)
            throw new FormatException($"kind '{document.Kind}': {kindError}");
        if (CdiValidation.AnnotationsError(document.Annotations) is { } annotations) throw new FormatException($"annotations: {annotations}");
        if (document.ContainerEdits is { } edits && CdiValidation.EditsError(edits) is { } editsError)
            throw new FormatException($"containerEdits: {editsError}");

        var spec = new CdiSpec(document, vendor, cls, path, priority);
        var devices = new Dictionary<string, CdiDeviceDocument>(StringComparer.Ordinal);
        foreach (var device in document.Devices ?? [])
        {
            var field = $"devices[{devices.Count}] '{device.Name}'";
            if (CdiNames.DeviceNameError(device.Name) is { } nameError) throw new FormatException($"{field}: {nameError}");
            if (CdiValidation.AnnotationsError(device.Annotations) is { } deviceAnnotations) throw new FormatException($"{field}.annotations: {deviceAnnotations}");
            if (device.ContainerEdits is not { IsEmpty: false } deviceEdits) throw new FormatException($"{field}: the device has no container edits");
            if (CdiValidation.EditsError(deviceEdits) is { } deviceEditsError) throw new FormatException($"{field}.containerEdits: {deviceEditsError}");
            if (!devices.TryAdd(device.Name, device)) throw new FormatException($"{field}: the spec defines the device twice");
        }
        if (devices.Count == 0) throw new FormatException("the spec defines no devices");
        spec.Devices = devices;
        return spec;
    }
}
