using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Berth.E2E.Tests.Fixtures;

public enum Compression
{
    None,
    Gzip,
    Zstd,
}

/// <summary>One built image: its blobs and the manifest that ties them together, ready to push.</summary>
public sealed record TestImage(
    IReadOnlyList<TestBlob> Layers, TestBlob Config, byte[] Manifest, string ManifestMediaType, IReadOnlyList<string> DiffIds)
{
    public string ManifestDigest => TestBlob.DigestOf(Manifest);

    /// <summary>The image ID berthd reports: the config digest.</summary>
    public string Id => Config.Digest;
}

public sealed record TestBlob(byte[] Content, string MediaType)
{
    public string Digest => DigestOf(Content);

    public static string DigestOf(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));
}

/// <summary>
/// Builds test images from Debian's busybox-static with the project's own code: layers as tars,
/// compressed as asked, an OCI or Docker schema 2 config and manifest, and multi-platform indexes.
/// </summary>
public sealed class TestImageBuilder
{
    public static readonly DateTimeOffset Mtime = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private readonly List<(byte[] Tar, Compression Compression)> _layers = [];
    private string _architecture = "amd64";
    private string? _user;
    private Action<JsonObject>? _runConfig;
    private bool _docker;
    private Func<IReadOnlyList<string>, IReadOnlyList<string>>? _diffIdOverride;
    private Func<TestBlob, long>? _sizeOverride;
    private readonly Dictionary<string, string> _annotations = [];

    public TestImageBuilder Layer(byte[] tar, Compression compression = Compression.Gzip)
    {
        _layers.Add((tar, compression));
        return this;
    }

    public TestImageBuilder Architecture(string architecture)
    {
        _architecture = architecture;
        return this;
    }

    /// <summary>Changes the image's run config (Entrypoint, Cmd, Env, WorkingDir, StopSignal, Volumes).</summary>
    public TestImageBuilder RunConfig(Action<JsonObject> change)
    {
        _runConfig = change;
        return this;
    }

    public TestImageBuilder User(string user)
    {
        _user = user;
        return this;
    }

    /// <summary>Docker schema 2 media types instead of OCI ones.</summary>
    public TestImageBuilder DockerSchema2()
    {
        _docker = true;
        return this;
    }

    /// <summary>Lies in the config about the layers' uncompressed digests.</summary>
    public TestImageBuilder WithDiffIds(Func<IReadOnlyList<string>, IReadOnlyList<string>> change)
    {
        _diffIdOverride = change;
        return this;
    }

    /// <summary>Lies in the manifest about the layers' sizes.</summary>
    public TestImageBuilder WithLayerSizes(Func<TestBlob, long> size)
    {
        _sizeOverride = size;
        return this;
    }

    /// <summary>An annotation on the manifest.</summary>
    public TestImageBuilder Annotation(string key, string value)
    {
        _annotations[key] = value;
        return this;
    }

    public TestImage Build()
    {
        var layers = _layers.Select(l => new TestBlob(Compress(l.Tar, l.Compression), LayerMediaType(l.Compression))).ToList();
        IReadOnlyList<string> diffIds = _layers.Select(l => TestBlob.DigestOf(l.Tar)).ToList();
        if (_diffIdOverride is not null) diffIds = _diffIdOverride(diffIds);

        var runConfig = new JsonObject
        {
            ["Env"] = new JsonArray("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            ["Cmd"] = new JsonArray("/bin/sh"),
        };
        if (_user is not null) runConfig["User"] = _user;
        _runConfig?.Invoke(runConfig);
        var config = new JsonObject
        {
            ["created"] = Mtime.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
            ["architecture"] = _architecture,
            ["os"] = "linux",
            ["config"] = runConfig,
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray([.. diffIds.Select(d => JsonValue.Create(d))]) },
        };
        var configBlob = new TestBlob(Encoding.UTF8.GetBytes(config.ToJsonString()),
            _docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json");

        var manifestType = _docker ? "application/vnd.docker.distribution.manifest.v2+json" : "application/vnd.oci.image.manifest.v1+json";
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = manifestType,
            ["config"] = Descriptor(configBlob, configBlob.Content.Length),
            ["layers"] = new JsonArray([.. layers.Select(l => (JsonNode)Descriptor(l, _sizeOverride?.Invoke(l) ?? l.Content.Length))]),
        };
        if (_annotations.Count > 0) manifest["annotations"] = new JsonObject([.. _annotations.Select(a => KeyValuePair.Create(a.Key, (JsonNode?)a.Value))]);
        return new TestImage(layers, configBlob, Encoding.UTF8.GetBytes(manifest.ToJsonString()), manifestType, diffIds);
    }

    /// <summary>An OCI index over several images, each with its platform.</summary>
    public static byte[] Index(IEnumerable<(TestImage Image, string Architecture)> images) =>
        Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.index.v1+json",
            ["manifests"] = new JsonArray([.. images.Select(i => (JsonNode)new JsonObject
            {
                ["mediaType"] = i.Image.ManifestMediaType,
                ["digest"] = i.Image.ManifestDigest,
                ["size"] = i.Image.Manifest.Length,
                ["platform"] = new JsonObject { ["architecture"] = i.Architecture, ["os"] = "linux" },
            })]),
        }.ToJsonString());

    private static JsonObject Descriptor(TestBlob blob, long size) => new()
    {
        ["mediaType"] = blob.MediaType,
        ["digest"] = blob.Digest,
        ["size"] = size,
    };

    private string LayerMediaType(Compression compression) => (_docker, compression) switch
    {
        (true, Compression.Gzip) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        (_, Compression.Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
        (_, Compression.Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    };

    public static byte[] Compress(byte[] tar, Compression compression)
    {
        if (compression == Compression.None) return tar;
        using var output = new MemoryStream();
        using (Stream compressor = compression == Compression.Gzip
                   ? new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)
                   : new ZstdSharp.CompressionStream(output, 3, leaveOpen: true))
        {
            compressor.Write(tar);
        }
        return output.ToArray();
    }
}

/// <summary>The layers of the test images, from Debian's busybox-static.</summary>
public static class TestLayers
{
    public const string BusyboxPath = "/bin/busybox";

    /// <summary>
    /// A root filesystem: busybox with a hard link and symlinks to it, passwd and group, a setuid file,
    /// a sticky tmp, a file with an xattr, and a home owned by uid 1000.
    /// </summary>
    public static byte[] Base()
    {
        var busybox = System.IO.File.ReadAllBytes(TestEnvironment.RequireTool(BusyboxPath, "busybox-static"));
        return Tar(w =>
        {
            Dir(w, "bin/");
            File(w, "bin/busybox", busybox, 0x1ED);
            Link(w, TarEntryType.HardLink, "bin/sh", "bin/busybox");
            Link(w, TarEntryType.SymbolicLink, "bin/ls", "busybox");
            Link(w, TarEntryType.SymbolicLink, "bin/cat", "/bin/busybox");
            Dir(w, "etc/");
            File(w, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1000:berth:/home/berth:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"u8.ToArray(), 0x1A4);
            File(w, "etc/group", "root:x:0:\nberth:x:1000:\nnogroup:x:65534:\n"u8.ToArray(), 0x1A4);
            File(w, "etc/xattr-file", "has an xattr\n"u8.ToArray(), 0x1A4,
                xattrs: new Dictionary<string, string> { ["SCHILY.xattr.user.berth"] = "layer-xattr" });
            File(w, "usr/bin/setuid-file", "#!/bin/sh\n"u8.ToArray(), 0x9ED);
            Dir(w, "tmp/", 0x3FF);
            File(w, "tmp/old-file", "from the base layer\n"u8.ToArray(), 0x1A4);
            Dir(w, "home/berth/", 0x1ED, uid: 1000, gid: 1000);
            File(w, "home/berth/.profile", "export PS1='$ '\n"u8.ToArray(), 0x1A4, uid: 1000, gid: 1000);
        });
    }

    /// <summary>Changes over <see cref="Base"/>: a whiteout, an opaque directory, a new file.</summary>
    public static byte[] Overlay() => Tar(w =>
    {
        Dir(w, "etc/");
        File(w, "etc/.wh.group", [], 0);
        File(w, "etc/motd", "welcome to berth\n"u8.ToArray(), 0x1A4);
        Dir(w, "tmp/", 0x3FF);
        File(w, "tmp/.wh..wh..opq", [], 0);
        File(w, "tmp/new-file", "from the overlay layer\n"u8.ToArray(), 0x1A4);
    });

    /// <summary>A one-file layer, distinct per <paramref name="content"/>.</summary>
    public static byte[] OneFile(string path, string content) => Tar(w => File(w, path, Encoding.UTF8.GetBytes(content), 0x1A4));

    public static byte[] Tar(Action<TarWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            write(writer);
        }
        return stream.ToArray();
    }

    public static void Dir(TarWriter w, string name, int mode = 0x1ED, int uid = 0, int gid = 0) =>
        w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)mode, Uid = uid, Gid = gid, ModificationTime = TestImageBuilder.Mtime });

    public static void File(TarWriter w, string name, byte[] content, int mode, int uid = 0, int gid = 0, Dictionary<string, string>? xattrs = null) =>
        w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name, xattrs ?? [])
        {
            DataStream = new MemoryStream(content), Mode = (UnixFileMode)mode, Uid = uid, Gid = gid, ModificationTime = TestImageBuilder.Mtime,
        });

    public static void Link(TarWriter w, TarEntryType type, string name, string target) =>
        w.WriteEntry(new PaxTarEntry(type, name) { LinkName = target, Mode = (UnixFileMode)0x1FF, ModificationTime = TestImageBuilder.Mtime });
}

/// <summary>Pushes images through the distribution API (monolithic blob uploads), authenticating as the registry asks.</summary>
public sealed class RegistryPusher(RegistryServer registry) : IDisposable
{
    private readonly HttpClient _http = registry.CreateHttpClient();

    public async Task PushAsync(string repository, TestImage image, params string[] tags)
    {
        await PushBlobsAsync(repository, image);
        foreach (var tag in tags) await PushManifestAsync(repository, tag, image.Manifest, image.ManifestMediaType);
        if (tags.Length == 0) await PushManifestAsync(repository, image.ManifestDigest, image.Manifest, image.ManifestMediaType);
    }

    public async Task PushBlobsAsync(string repository, TestImage image)
    {
        foreach (var blob in image.Layers.Append(image.Config)) await PushBlobAsync(repository, blob.Content);
    }

    public async Task PushBlobAsync(string repository, byte[] content)
    {
        var digest = TestBlob.DigestOf(content);
        using (var head = await SendAsync(repository, () => new HttpRequestMessage(HttpMethod.Head, $"v2/{repository}/blobs/{digest}")))
        {
            if (head.IsSuccessStatusCode) return;
        }
        using var start = await SendAsync(repository, () => new HttpRequestMessage(HttpMethod.Post, $"v2/{repository}/blobs/uploads/"));
        Ensure(start, "start upload");
        var location = start.Headers.Location!;
        var upload = location.IsAbsoluteUri ? location : new Uri(registry.BaseUri, location);
        var separator = upload.Query.Length > 0 ? "&" : "?";
        using var put = await SendAsync(repository, () => new HttpRequestMessage(HttpMethod.Put, $"{upload}{separator}digest={Uri.EscapeDataString(digest)}")
        {
            Content = new ByteArrayContent(content) { Headers = { ContentType = new("application/octet-stream") } },
        });
        Ensure(put, $"upload {digest}");
    }

    public async Task PushManifestAsync(string repository, string reference, byte[] manifest, string mediaType)
    {
        using var response = await SendAsync(repository, () => new HttpRequestMessage(HttpMethod.Put, $"v2/{repository}/manifests/{reference}")
        {
            Content = new ByteArrayContent(manifest) { Headers = { ContentType = new(mediaType) } },
        });
        Ensure(response, $"manifest {repository}:{reference}");
    }

    private async Task<HttpResponseMessage> SendAsync(string repository, Func<HttpRequestMessage> create)
    {
        using var request = create();
        switch (registry.Mode)
        {
            case RegistryMode.Basic:
                request.Headers.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{RegistryServer.Username}:{RegistryServer.Password}")));
                break;
            case RegistryMode.Token:
                request.Headers.Authorization = new("Bearer", registry.Tokens.IssueToken($"repository:{repository}:pull,push"));
                break;
        }
        return await _http.SendAsync(request);
    }

    private static void Ensure(HttpResponseMessage response, string what)
    {
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"push {what}: {(int)response.StatusCode} {response.Content.ReadAsStringAsync().Result}");
    }

    public void Dispose() => _http.Dispose();
}
