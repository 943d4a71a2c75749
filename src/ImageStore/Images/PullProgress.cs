using System.Collections.Concurrent;

namespace Berth.ImageStore.Images;

/// <summary>One layer of a pull under way: its compressed size and the bytes fetched so far.</summary>
public sealed record LayerProgress(string Digest, long Size, long Done);

/// <summary>A pull under way, by the reference it pulls, layer by layer in manifest order.</summary>
public sealed record PullProgressSnapshot(string Image, DateTimeOffset Started, IReadOnlyList<LayerProgress> Layers);

/// <summary>
/// What the pulls under way have fetched, read on demand (containerd's ingest status, as <c>ctr pull</c> shows it):
/// each download registers its verifying stream's byte count, so nothing is counted on the read path.
/// </summary>
internal sealed class PullProgress
{
    private readonly ConcurrentDictionary<ActivePull, byte> _pulls = new();
    private readonly ConcurrentDictionary<string, Func<long>> _downloads = new(StringComparer.Ordinal);

    public sealed class ActivePull(string image, IReadOnlyList<(string Digest, long Size)> layers)
    {
        public string Image { get; } = image;
        public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;
        public IReadOnlyList<(string Digest, long Size)> Layers { get; } = layers;
        public ConcurrentDictionary<string, byte> Finished { get; } = new(StringComparer.Ordinal);
    }

    public ActivePull Begin(string image, IReadOnlyList<(string Digest, long Size)> layers)
    {
        var pull = new ActivePull(image, layers);
        _pulls[pull] = 0;
        return pull;
    }

    public void End(ActivePull pull) => _pulls.TryRemove(pull, out _);

    /// <summary>A layer download starts; disposing the result ends it.</summary>
    public IDisposable Download(string digest, Func<long> bytesRead)
    {
        _downloads[digest] = bytesRead;
        // Only its own entry: two chains can fetch one blob at once, and the later one's count stays.
        return new Registration(() => _downloads.TryRemove(new KeyValuePair<string, Func<long>>(digest, bytesRead)));
    }

    public IReadOnlyList<PullProgressSnapshot> Snapshot() =>
        _pulls.Keys.OrderBy(p => p.Started).Select(p => new PullProgressSnapshot(p.Image, p.Started, p.Layers.Select(layer =>
            new LayerProgress(layer.Digest, layer.Size,
                p.Finished.ContainsKey(layer.Digest) ? layer.Size
                : _downloads.TryGetValue(layer.Digest, out var read) ? Math.Min(read(), layer.Size) : 0)).ToList())).ToList();

    private sealed class Registration(Action end) : IDisposable
    {
        public void Dispose() => end();
    }
}
