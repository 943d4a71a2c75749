namespace Berth.ImageStore.Content;

/// <summary>
/// Content-addressed blobs under <c>blobs/sha256/&lt;hex&gt;</c>. A blob is written to an ingest file,
/// verified against its digest and size as it streams, fsynced, then renamed into place:
/// a partial or corrupt blob is never visible under its digest.
/// </summary>
public sealed class ContentStore
{
    private readonly string _blobs;
    private readonly string _ingest;

    public ContentStore(string root)
    {
        Root = root;
        _blobs = Path.Combine(root, "blobs", "sha256");
        _ingest = Path.Combine(root, "ingest");
        Directory.CreateDirectory(_blobs);
        Directory.CreateDirectory(_ingest);
        // Ingests interrupted by a crash are garbage.
        foreach (var stale in Directory.EnumerateFiles(_ingest)) File.Delete(stale);
    }

    /// <summary>The directory holding blobs and ingests.</summary>
    public string Root { get; }

    public string PathOf(Digest digest) => Path.Combine(_blobs, digest.Hex);

    public bool Contains(Digest digest) => File.Exists(PathOf(digest));

    public Task<byte[]> ReadAsync(Digest digest, CancellationToken cancellationToken) =>
        File.ReadAllBytesAsync(PathOf(digest), cancellationToken);

    public IEnumerable<Digest> List()
    {
        foreach (var path in Directory.EnumerateFiles(_blobs))
        {
            if (Digest.TryParse(Digest.Sha256Prefix + Path.GetFileName(path), out var digest)) yield return digest;
        }
    }

    public void Delete(Digest digest) => File.Delete(PathOf(digest));

    /// <summary>Stores a small blob (a manifest or config) already in memory, after checking its digest.</summary>
    public async Task PutAsync(Digest expected, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var actual = Digest.Compute(data.Span);
        if (actual != expected)
            throw new ImageFormatException($"content {expected} has digest {actual}");
        if (Contains(expected)) return;
        await using var ingest = BeginIngest(expected, data.Length);
        await ingest.File.WriteAsync(data, cancellationToken);
        ingest.Commit(actual, data.Length);
    }

    /// <summary>
    /// Starts writing a blob. The caller wraps its source in <see cref="VerifyingStream"/> (which tees into
    /// <see cref="Ingest.File"/>) and commits once the stream was read to its end and verified.
    /// </summary>
    public Ingest BeginIngest(Digest expected, long expectedSize)
    {
        var path = Path.Combine(_ingest, $"{expected.Hex}-{Guid.NewGuid():N}");
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous);
        return new Ingest(this, expected, expectedSize, path, file);
    }

    /// <summary>A blob being written; disposed without <see cref="Commit"/>, it leaves nothing behind.</summary>
    public sealed class Ingest : IAsyncDisposable
    {
        private readonly ContentStore _store;
        private readonly string _path;
        private bool _committed;

        internal Ingest(ContentStore store, Digest expected, long expectedSize, string path, FileStream file)
        {
            _store = store;
            Expected = expected;
            ExpectedSize = expectedSize;
            _path = path;
            File = file;
        }

        public Digest Expected { get; }
        public long ExpectedSize { get; }
        public FileStream File { get; }

        public void Commit(Digest actual, long actualSize)
        {
            if (actualSize != ExpectedSize)
                throw new ImageFormatException($"blob {Expected}: got {actualSize} bytes, the descriptor says {ExpectedSize}");
            if (actual != Expected)
                throw new ImageFormatException($"blob {Expected}: content has digest {actual}");
            File.Flush(flushToDisk: true);
            File.Dispose();
            System.IO.File.Move(_path, _store.PathOf(Expected), overwrite: true);
            Durability.SyncDirectory(_store._blobs);
            _committed = true;
        }

        public async ValueTask DisposeAsync()
        {
            await File.DisposeAsync();
            if (!_committed) System.IO.File.Delete(_path);
        }
    }
}
