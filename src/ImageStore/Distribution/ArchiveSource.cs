using System.Text.Json;
using System.Text.Json.Nodes;
using Berth.ImageStore.Content;
using Berth.ImageStore.Oci;
using Berth.ImageStore.References;

namespace Berth.ImageStore.Distribution;

/// <summary>
/// Images from a directory instead of a registry: an OCI image layout (<c>oci-layout</c>, <c>index.json</c>,
/// <c>blobs/</c>), which newer <c>docker save</c> also writes, or a legacy <c>docker save</c> tree
/// (<c>manifest.json</c> with config and layer paths), for which a Docker schema 2 manifest is made up.
/// </summary>
internal sealed class ArchiveSource : IImageSource
{
    private const string ContainerdNameAnnotation = "io.containerd.image.name";
    private const string OciRefNameAnnotation = "org.opencontainers.image.ref.name";

    private readonly string _directory;
    private readonly Dictionary<Digest, string> _files = [];
    private readonly Dictionary<Digest, FetchedManifest> _manifests = [];
    private readonly Dictionary<string, Digest> _byName = new(StringComparer.Ordinal);

    private ArchiveSource(string directory) => _directory = directory;

    /// <summary>The images in the archive, by their normalized names (tagged references).</summary>
    public IReadOnlyCollection<ImageReference> Images => [.. _byName.Keys.Select(ImageReference.Parse)];

    public static async Task<ArchiveSource> OpenAsync(string directory, string? name, CancellationToken cancellationToken)
    {
        var source = new ArchiveSource(directory);
        if (File.Exists(Path.Combine(directory, "index.json")))
            await source.ReadOciLayoutAsync(name, cancellationToken);
        else if (File.Exists(Path.Combine(directory, "manifest.json")))
            await source.ReadDockerSaveAsync(name, cancellationToken);
        else
            throw new InvalidImageRequestException($"{directory}: neither an OCI image layout (index.json) nor a docker save archive (manifest.json)");
        if (source._byName.Count == 0)
            throw new InvalidImageRequestException($"{directory}: the archive names no image; give one with --name");
        return source;
    }

    private async Task ReadOciLayoutAsync(string? name, CancellationToken cancellationToken)
    {
        var index = JsonSerializer.Deserialize(await File.ReadAllBytesAsync(Path.Combine(_directory, "index.json"), cancellationToken), OciJsonContext.Default.ManifestDocument)
                    ?? throw new ImageFormatException("index.json is empty");
        foreach (var descriptor in index.Manifests ?? [])
        {
            var annotations = descriptor.Annotations ?? [];
            var refName = name
                          ?? annotations.GetValueOrDefault(ContainerdNameAnnotation)
                          ?? annotations.GetValueOrDefault(OciRefNameAnnotation);
            if (refName is null) continue;
            Add(refName, Digest.Parse(descriptor.Digest));
        }
    }

    private async Task ReadDockerSaveAsync(string? name, CancellationToken cancellationToken)
    {
        var entries = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(_directory, "manifest.json"), cancellationToken))?.AsArray()
                      ?? throw new ImageFormatException("manifest.json is empty");
        foreach (var entry in entries)
        {
            var config = await HashFileAsync(entry?["Config"]?.GetValue<string>() ?? throw new ImageFormatException("manifest.json: an entry has no Config"), cancellationToken);
            var layers = new JsonArray();
            foreach (var layerPath in entry!["Layers"]?.AsArray() ?? [])
            {
                var layer = await HashFileAsync(layerPath!.GetValue<string>(), cancellationToken);
                layers.Add((JsonNode)new JsonObject
                {
                    ["mediaType"] = layer.Gzipped ? MediaTypes.DockerLayerGzip : MediaTypes.DockerLayer,
                    ["digest"] = layer.Digest.ToString(),
                    ["size"] = layer.Size,
                });
            }
            var manifest = new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = MediaTypes.DockerManifest,
                ["config"] = new JsonObject { ["mediaType"] = MediaTypes.DockerConfig, ["digest"] = config.Digest.ToString(), ["size"] = config.Size },
                ["layers"] = layers,
            };
            var bytes = System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString());
            var digest = Digest.Compute(bytes);
            _manifests[digest] = new FetchedManifest(bytes, MediaTypes.DockerManifest, digest);

            var tags = name is not null ? [name] : entry["RepoTags"]?.AsArray().Select(t => t!.GetValue<string>()).ToList() ?? [];
            foreach (var tag in tags) Add(tag, digest);
        }
    }

    private void Add(string refName, Digest manifest)
    {
        if (!ImageReference.TryParse(refName, out var reference, out var error))
            throw new InvalidImageRequestException($"the archive names an image '{refName}': {error}");
        if (reference.RepoTag is null)
            throw new InvalidImageRequestException($"the archive names an image '{refName}' without a tag");
        _byName[reference.RepoTag] = manifest;
    }

    private async Task<(Digest Digest, long Size, bool Gzipped)> HashFileAsync(string relative, CancellationToken cancellationToken)
    {
        var path = Path.GetFullPath(Path.Combine(_directory, relative));
        if (!path.StartsWith(Path.GetFullPath(_directory) + "/", StringComparison.Ordinal))
            throw new UnsafeLayerException($"manifest.json names '{relative}', outside the archive");
        await using var file = File.OpenRead(path);
        var hash = await System.Security.Cryptography.SHA256.HashDataAsync(file, cancellationToken);
        file.Position = 0;
        var magic = new byte[2];
        var gzipped = await file.ReadAsync(magic, cancellationToken) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        var digest = Digest.FromHash(hash);
        _files[digest] = path;
        return (digest, file.Length, gzipped);
    }

    public async Task<FetchedManifest> GetManifestAsync(ImageReference image, string tagOrDigest, CancellationToken cancellationToken)
    {
        if (!Digest.TryParse(tagOrDigest, out var digest) && !_byName.TryGetValue(image.RepoTag ?? "", out digest))
            throw new ImageNotFoundException($"{image}: not in the archive");
        if (_manifests.TryGetValue(digest, out var made)) return made;
        var content = await File.ReadAllBytesAsync(BlobPath(digest, image), cancellationToken);
        var actual = Digest.Compute(content);
        if (actual != digest) throw new ImageFormatException($"{image}: archive blob {digest} has digest {actual}");
        var mediaType = RegistryClient.SniffMediaType(content)
                        ?? throw new ImageFormatException($"{image}: archive blob {digest} is not a manifest or index");
        return new FetchedManifest(content, mediaType, digest);
    }

    public Task<Stream> OpenBlobAsync(ImageReference image, Digest digest, CancellationToken cancellationToken) =>
        Task.FromResult<Stream>(File.OpenRead(BlobPath(digest, image)));

    private string BlobPath(Digest digest, ImageReference image)
    {
        if (_files.TryGetValue(digest, out var path)) return path;
        path = Path.Combine(_directory, "blobs", "sha256", digest.Hex);
        return File.Exists(path) ? path : throw new ImageNotFoundException($"{image}: blob {digest} is not in the archive");
    }
}
