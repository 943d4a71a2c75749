using System.Text.Json;
using Berth.ImageStore.Content;
using Microsoft.Extensions.Logging;

namespace Berth.ImageStore.Images;

/// <summary>
/// Image records, one JSON file each (<c>images/&lt;id-hex&gt;.json</c>) written atomically, with an in-memory
/// index by ID. A tag or repo digest names at most one image: giving it to one takes it from another.
/// </summary>
internal sealed partial class ImageMetadataStore : IDisposable
{
    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");
    private readonly Dictionary<string, ImageRecord> _byId = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    // Serialises writers, so that files land in the order the index changed.
    private readonly SemaphoreSlim _writer = new(1, 1);

    public ImageMetadataStore(string directory, ILogger logger)
    {
        Directory = directory;
        System.IO.Directory.CreateDirectory(directory);
        foreach (var stale in System.IO.Directory.EnumerateFiles(directory, ".*.tmp")) File.Delete(stale);
        var written = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        foreach (var path in System.IO.Directory.EnumerateFiles(directory, "*.json"))
        {
            if (Load(path) is { } record)
            {
                _byId[record.Id] = record;
                written[record.Id] = File.GetLastWriteTimeUtc(path);
            }
            else Quarantine(path, logger);
        }
        GiveEachNameToOneImage(written);
    }

    /// <summary>
    /// A crash between the files of one save can leave a tag or digest on two records (the new owner's is written
    /// first): the record written last keeps it, and the other is rewritten without it.
    /// </summary>
    private void GiveEachNameToOneImage(Dictionary<string, DateTime> written)
    {
        var owners = new Dictionary<string, ImageRecord>(StringComparer.Ordinal);
        foreach (var record in _byId.Values.OrderByDescending(r => written[r.Id]))
        {
            foreach (var name in record.RepoTags.Concat(record.RepoDigests)) owners.TryAdd(name, record);
        }
        foreach (var record in _byId.Values.ToList())
        {
            var tags = record.RepoTags.Where(t => owners[t].Id == record.Id).ToList();
            var digests = record.RepoDigests.Where(d => owners[d].Id == record.Id).ToList();
            if (tags.Count == record.RepoTags.Count && digests.Count == record.RepoDigests.Count) continue;
            var fixedUp = record with { RepoTags = tags, RepoDigests = digests };
            _byId[record.Id] = fixedUp;
            Write(fixedUp);
        }
    }

    private ImageMetadataStore(string directory)
    {
        Directory = directory;
        if (!System.IO.Directory.Exists(directory)) return;
        foreach (var path in System.IO.Directory.EnumerateFiles(directory, "*.json"))
            if (Load(path) is { } record) _byId[record.Id] = record;
    }

    /// <summary>The records as they are now, touching nothing: for reading a store a running berthd owns.</summary>
    public static ImageMetadataStore ReadOnly(string directory) => new(directory);

    /// <summary>The directory of the records.</summary>
    public string Directory { get; }

    private static ImageRecord? Load(string path)
    {
        try
        {
            var record = JsonSerializer.Deserialize(File.ReadAllBytes(path), ImageJsonContext.Default.ImageRecord);
            return record is not null && Digest.TryParse(record.Id, out var id) && Path.GetFileName(path) == id.Hex + ".json" ? record : null;
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>A record berthd cannot read is moved aside, not fatal: the node serves the images it can.</summary>
    private void Quarantine(string path, ILogger logger)
    {
        var quarantine = Path.Combine(Directory, "quarantine");
        System.IO.Directory.CreateDirectory(quarantine);
        var target = Path.Combine(quarantine, $"{Path.GetFileName(path)}.{Guid.NewGuid():N}");
        File.Move(path, target);
        LogQuarantined(logger, path, target);
    }

    public IReadOnlyList<ImageRecord> List()
    {
        lock (_lock) return [.. _byId.Values];
    }

    public ImageRecord? Get(string id)
    {
        lock (_lock) return _byId.GetValueOrDefault(id);
    }

    /// <summary>Finds by full ID, ID without "sha256:", a unique ID prefix, a repo tag or a repo digest.</summary>
    /// <summary>By ID, unique ID prefix, repo tag or repo digest, with short names normalized (busybox is docker.io/library/busybox:latest).</summary>
    public ImageRecord? Resolve(string image)
    {
        if (string.IsNullOrEmpty(image)) return null;
        if (Find(image) is { } found) return found;
        if (!References.ImageReference.TryParse(image, out var reference, out _)) return null;
        if (reference.Digest is not null && Find(reference.RepoDigest!) is { } byDigest) return byDigest;
        return reference.RepoTag is { } tag ? Find(tag) : null;
    }

    public ImageRecord? Find(string text)
    {
        lock (_lock)
        {
            if (_byId.TryGetValue(text, out var byId)) return byId;
            if (_byId.TryGetValue(Digest.Sha256Prefix + text, out byId)) return byId;
            foreach (var record in _byId.Values)
            {
                if (record.RepoTags.Contains(text) || record.RepoDigests.Contains(text)) return record;
            }
            // A truncated ID, as crictl prints them: it must name exactly one image.
            var prefix = text.StartsWith(Digest.Sha256Prefix, StringComparison.Ordinal) ? text : Digest.Sha256Prefix + text;
            var hex = prefix.AsSpan(Digest.Sha256Prefix.Length);
            if (hex.Length < 3 || hex.ContainsAnyExcept(HexDigits)) return null;
            ImageRecord? match = null;
            foreach (var record in _byId.Values)
            {
                if (!record.Id.StartsWith(prefix, StringComparison.Ordinal)) continue;
                if (match is not null) return null;
                match = record;
            }
            return match;
        }
    }

    /// <summary>Stores an image, moving its tags and digests away from any image that held them.</summary>
    public async Task<ImageRecord> SaveAsync(ImageRecord record, CancellationToken cancellationToken)
    {
        await _writer.WaitAsync(cancellationToken);
        try
        {
            return SaveLocked(record, cancellationToken);
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <summary>
    /// Only writers change the index, one at a time: the new records are worked out from it, written, and only then
    /// shown, so readers never see a name the disk does not have. Once writing starts it is not cancelled, since a
    /// commit cut between its files would leave the disk and the index telling different stories.
    /// </summary>
    private ImageRecord SaveLocked(ImageRecord record, CancellationToken cancellationToken)
    {
        List<ImageRecord> changed = [];
        lock (_lock)
        {
            if (_byId.TryGetValue(record.Id, out var existing))
            {
                record = record with
                {
                    RepoTags = [.. existing.RepoTags.Union(record.RepoTags)],
                    RepoDigests = [.. existing.RepoDigests.Union(record.RepoDigests)],
                };
            }
            // The image first: a crash after it leaves a name on two records, which loading resolves to the newer.
            changed.Add(record);
            foreach (var other in _byId.Values)
            {
                if (other.Id == record.Id) continue;
                var tags = other.RepoTags.Except(record.RepoTags).ToList();
                var digests = other.RepoDigests.Except(record.RepoDigests).ToList();
                if (tags.Count == other.RepoTags.Count && digests.Count == other.RepoDigests.Count) continue;
                changed.Add(other with { RepoTags = tags, RepoDigests = digests });
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        foreach (var image in changed) Write(image);
        lock (_lock)
        {
            foreach (var image in changed) _byId[image.Id] = image;
        }
        return record;
    }

    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await _writer.WaitAsync(cancellationToken);
        try
        {
            lock (_lock) _byId.Remove(id);
            File.Delete(PathOf(id));
            Durability.SyncDirectory(Directory);
        }
        finally
        {
            _writer.Release();
        }
    }

    private string PathOf(string id) => Path.Combine(Directory, Digest.Parse(id).Hex + ".json");

    private void Write(ImageRecord record) =>
        Durability.WriteAtomic(PathOf(record.Id), JsonSerializer.SerializeToUtf8Bytes(record, ImageJsonContext.Default.ImageRecord));

    public void Dispose() => _writer.Dispose();

    [LoggerMessage(Level = LogLevel.Error, Message = "image store: the record {Path} cannot be read; moved to {Target}, and the image is not listed")]
    private static partial void LogQuarantined(ILogger logger, string path, string target);
}
