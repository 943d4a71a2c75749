using System.Buffers;
using System.Formats.Tar;
using System.Text.Json;
using Berth.ImageStore.Content;
using Berth.ImageStore.References;

namespace Berth.ImageStore.Images;

/// <summary>
/// Writes one image as an OCI image layout tar (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/*</c>) with the
/// blobs as pulled, plus Docker's <c>manifest.json</c>, so skopeo (<c>oci-archive:</c>), <c>docker load</c>,
/// <c>ctr import</c> and <c>berthd import</c> all read it. It only reads the store, so berthd may be running: blobs are
/// immutable, and one removed meanwhile stays readable through the open file.
/// </summary>
public static class ImageExporter
{
    public static async Task<ImageRecord> ExportAsync(string root, string image, string destination, CancellationToken cancellationToken)
    {
        var record = ImageMetadataStore.ReadOnly(Path.Combine(root, "images")).Resolve(image)
                     ?? throw new ImageNotFoundException($"image {image}: not in the store at {root}");
        var blobs = Path.Combine(root, "content", "blobs", "sha256");
        var files = new List<string> { record.ManifestDigest, record.Id };
        files.AddRange(record.Layers);
        foreach (var digest in files)
        {
            if (!File.Exists(Path.Combine(blobs, Digest.Parse(digest).Hex)))
                throw new ImageNotFoundException($"image {image}: blob {digest} is missing from the store");
        }
        var temporary = destination + ".tmp";
        try
        {
            await using (var output = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            await using (var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: false))
            {
                await WriteDirectoryAsync(tar, "blobs/", cancellationToken);
                await WriteDirectoryAsync(tar, "blobs/sha256/", cancellationToken);
                foreach (var digest in files.Distinct(StringComparer.Ordinal))
                {
                    var entry = new PaxTarEntry(TarEntryType.RegularFile, $"blobs/sha256/{Digest.Parse(digest).Hex}") { Mode = (UnixFileMode)0x1A4 };
                    await using var blob = File.OpenRead(Path.Combine(blobs, Digest.Parse(digest).Hex));
                    entry.DataStream = blob;
                    await tar.WriteEntryAsync(entry, cancellationToken);
                }
                await WriteFileAsync(tar, "oci-layout", """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray(), cancellationToken);
                await WriteFileAsync(tar, "index.json", Index(record, new FileInfo(Path.Combine(blobs, Digest.Parse(record.ManifestDigest).Hex)).Length), cancellationToken);
                await WriteFileAsync(tar, "manifest.json", DockerManifest(record), cancellationToken);
            }
            File.Move(temporary, destination, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
        return record;
    }

    /// <summary>One manifest entry per tag, named as containerd names it and with the tag as OCI's ref.name.</summary>
    private static byte[] Index(ImageRecord record, long manifestSize)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("schemaVersion", 2);
            json.WriteString("mediaType", "application/vnd.oci.image.index.v1+json");
            json.WriteStartArray("manifests");
            var names = record.RepoTags.Count > 0 ? record.RepoTags.Cast<string?>() : [null];
            foreach (var name in names)
            {
                json.WriteStartObject();
                json.WriteString("mediaType", record.ManifestMediaType);
                json.WriteString("digest", record.ManifestDigest);
                json.WriteNumber("size", manifestSize);
                if (name is not null)
                {
                    json.WriteStartObject("annotations");
                    json.WriteString("io.containerd.image.name", name);
                    json.WriteString("org.opencontainers.image.ref.name", ImageReference.TryParse(name, out var reference, out _) && reference.Tag is { } tag ? tag : name);
                    json.WriteEndObject();
                }
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] DockerManifest(ImageRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            json.WriteStartObject();
            json.WriteString("Config", $"blobs/sha256/{Digest.Parse(record.Id).Hex}");
            json.WriteStartArray("RepoTags");
            foreach (var tag in record.RepoTags) json.WriteStringValue(tag);
            json.WriteEndArray();
            json.WriteStartArray("Layers");
            foreach (var layer in record.Layers) json.WriteStringValue($"blobs/sha256/{Digest.Parse(layer).Hex}");
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndArray();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static Task WriteDirectoryAsync(TarWriter tar, string name, CancellationToken cancellationToken) =>
        tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)0x1ED }, cancellationToken);

    private static async Task WriteFileAsync(TarWriter tar, string name, byte[] content, CancellationToken cancellationToken)
    {
        using var data = new MemoryStream(content, writable: false);
        await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0x1A4, DataStream = data }, cancellationToken);
    }
}
