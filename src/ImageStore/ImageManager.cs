using Berth.ImageStore.Content;
using Berth.ImageStore.Distribution;
using Berth.ImageStore.Images;
using Berth.ImageStore.References;
using Berth.ImageStore.Oci;
using Berth.ImageStore.Snapshots;
using Microsoft.Extensions.Logging;

namespace Berth.ImageStore;

/// <summary>
/// The image store's public face: pull, find, list and remove images, and report disk usage.
/// It owns the content store, the snapshots and the image records under one root.
/// </summary>
public sealed partial class ImageManager : IDisposable
{
    private readonly ContentStore _content;
    private readonly SnapshotStore _snapshots;
    private readonly ImageMetadataStore _images;
    private readonly RegistryClient _registry;
    private readonly ImagePuller _puller;
    private readonly ILogger<ImageManager> _logger;
    private readonly Dictionary<string, SharedPull> _pulls = new(StringComparer.Ordinal);
    // Pull commits and removals take turns, so a removal never collects a layer a finishing pull is about to claim.
    private readonly SemaphoreSlim _commitLock = new(1, 1);
    private readonly ContentClaims _claims = new();
    private volatile MeasuredUsage? _usage;
    private int _storeVersion;

    public ImageManager(ImageStoreOptions options, ILogger<ImageManager> logger)
    {
        _logger = logger;
        Root = options.Root;
        _content = new ContentStore(Path.Combine(options.Root, "content"));
        _snapshots = new SnapshotStore(Path.Combine(options.Root, "snapshots"), logger);
        _images = new ImageMetadataStore(Path.Combine(options.Root, "images"), logger);
        _registry = new RegistryClient(options.Registries, options.PullProgressTimeout, options.DefaultRegistry);
        _puller = new ImagePuller(_content, _snapshots, options, logger);
    }

    /// <summary>The directory that holds everything the image store writes.</summary>
    public string Root { get; }

    /// <summary>
    /// Pulls an image. Concurrent pulls of the same reference share one pull, which goes on while any caller still
    /// waits for it: when the last one gives up (cancelled, or its deadline passed), the pull stops and takes back
    /// what it wrote.
    /// </summary>
    public async Task<ImageRecord> PullAsync(string image, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        var reference = ParseReference(image);
        var key = reference.ToString();
        SharedPull pull;
        lock (_pulls)
        {
            if (!_pulls.TryGetValue(key, out pull!))
            {
                pull = new SharedPull();
                _pulls[key] = pull;
                pull.Task = Task.Run(() => RunPullAsync(key, reference, credentials, pull), CancellationToken.None);
            }
            pull.Waiters++;
        }
        try
        {
            return await pull.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            lock (_pulls)
            {
                if (--pull.Waiters == 0 && !pull.Finished)
                {
                    // A caller arriving now starts afresh instead of joining a pull that is stopping.
                    if (_pulls.TryGetValue(key, out var current) && current == pull) _pulls.Remove(key);
                    pull.Cancellation.Cancel();
                }
            }
            throw;
        }
    }

    private async Task<ImageRecord> RunPullAsync(string key, ImageReference reference, RegistryCredentials? credentials, SharedPull pull)
    {
        var cancellationToken = pull.Cancellation.Token;
        using var claim = _claims.Begin();
        try
        {
            var pulled = await _puller.PullAsync(reference, new RegistrySource(_registry, credentials), claim, cancellationToken);
            await _commitLock.WaitAsync(cancellationToken);
            try
            {
                var saved = await _images.SaveAsync(pulled, cancellationToken);
                StoreChanged();
                LogPulled(_logger, key, saved.Id);
                return saved;
            }
            finally
            {
                _commitLock.Release();
            }
        }
        catch
        {
            await TakeBackAsync(claim);
            throw;
        }
        finally
        {
            lock (_pulls)
            {
                if (_pulls.TryGetValue(key, out var current) && current == pull) _pulls.Remove(key);
                pull.Finished = true;
                pull.Cancellation.Dispose();
            }
        }
    }

    /// <summary>One pull of a reference and the callers waiting for it.</summary>
    private sealed class SharedPull
    {
        public CancellationTokenSource Cancellation { get; } = new();

        public Task<ImageRecord> Task { get; set; } = null!;

        /// <summary>Callers still waiting; guarded by the pulls' lock, as <see cref="Finished"/> is.</summary>
        public int Waiters { get; set; }

        public bool Finished { get; set; }
    }

    /// <summary>
    /// Imports every named image of an OCI image layout or a <c>docker save</c> archive (a directory, or a tar of
    /// one), for nodes without a registry. The archive is unpacked with the same care as a layer.
    /// </summary>
    public async Task<IReadOnlyList<ImageRecord>> ImportAsync(string path, string? name, CancellationToken cancellationToken)
    {
        string? extracted = null;
        var directory = path;
        try
        {
            if (File.Exists(path))
            {
                extracted = _snapshots.NewWorkDirectory("import");
                await UnpackArchiveAsync(path, extracted, cancellationToken);
                directory = extracted;
            }
            else if (!Directory.Exists(path))
            {
                throw new InvalidImageRequestException($"{path}: no such file or directory");
            }

            var source = await ArchiveSource.OpenAsync(directory, name, cancellationToken);
            var imported = new List<ImageRecord>();
            foreach (var reference in source.Images)
            {
                using var claim = _claims.Begin();
                ImageRecord pulled;
                try
                {
                    pulled = await _puller.PullAsync(reference, source, claim, cancellationToken);
                }
                catch
                {
                    await TakeBackAsync(claim);
                    throw;
                }
                await _commitLock.WaitAsync(cancellationToken);
                try
                {
                    imported.Add(await _images.SaveAsync(pulled, cancellationToken));
                }
                finally
                {
                    _commitLock.Release();
                }
            }
            StoreChanged();
            return imported;
        }
        finally
        {
            if (extracted is not null) _snapshots.Delete(extracted);
        }
    }

    /// <summary>
    /// Unpacks a tar file, plain, gzip or zstd, into an empty directory with the care a layer gets: nothing lands
    /// outside it, links out and devices are refused, and <c>.wh.</c> entries become overlay whiteouts. A file that is
    /// not such an archive is an <see cref="ImageFormatException"/>.
    /// </summary>
    public static async Task UnpackArchiveAsync(string path, string directory, CancellationToken cancellationToken)
    {
        await using var archive = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        var read = archive.Read(magic);
        archive.Position = 0;
        await using var tar = read >= 2 && magic[0] == 0x1f && magic[1] == 0x8b
            ? new System.IO.Compression.GZipStream(archive, System.IO.Compression.CompressionMode.Decompress)
            : read == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd
                ? new ZstdSharp.DecompressionStream(archive)
                : (Stream)archive;
        await UnpackAsync(tar, directory, cancellationToken);
    }

    /// <summary>Unpacks a tar stream as <see cref="UnpackArchiveAsync"/> does.</summary>
    public static async Task UnpackAsync(Stream tar, string directory, CancellationToken cancellationToken)
    {
        try
        {
            await LayerUnpacker.UnpackAsync(tar, directory, cancellationToken);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or ZstdSharp.ZstdException)
        {
            throw new ImageFormatException($"not a tar archive: {e.Message}", e);
        }
    }

    /// <summary>Finds an image by ID, unique ID prefix, repo tag or repo digest, normalizing short names.</summary>
    public ImageRecord? Find(string image) => _images.Resolve(image);

    public IReadOnlyList<ImageRecord> List() => _images.List();

    /// <summary>The pulls under way, each layer with its size and the bytes fetched so far.</summary>
    public IReadOnlyList<PullProgressSnapshot> PullsInProgress() => _puller.Progress.Snapshot();

    /// <summary>
    /// Disk used by the image store. Measuring walks the tree, and only berthd writes there, so a result stands
    /// until the next pull, import or removal (kubelet asks every few seconds; the store rarely changes).
    /// </summary>
    public FilesystemUsage Usage()
    {
        var version = Volatile.Read(ref _storeVersion);
        if (_usage is { } cached && cached.Version == version) return cached.Usage;
        // The store's own directories: containers' writable layers (also under the root) are measured apart.
        var measured = FilesystemUsage.Measure(Root, [_content.Root, _snapshots.Root, _images.Directory]);
        _usage = new MeasuredUsage(version, measured);
        return measured;
    }

    private sealed record MeasuredUsage(int Version, FilesystemUsage Usage);

    private void StoreChanged() => Interlocked.Increment(ref _storeVersion);

    /// <summary>The image's config JSON, as pulled.</summary>
    public Task<byte[]> ReadConfigAsync(ImageRecord image, CancellationToken cancellationToken) =>
        _content.ReadAsync(Digest.Parse(image.Id), cancellationToken);

    /// <summary>The image's config, parsed (entrypoint, cmd, env, user, volumes, stop signal).</summary>
    public async Task<ImageConfigDocument?> ReadImageConfigAsync(ImageRecord image, CancellationToken cancellationToken) =>
        System.Text.Json.JsonSerializer.Deserialize(await ReadConfigAsync(image, cancellationToken), OciJsonContext.Default.ImageConfigDocument);

    /// <summary>
    /// Snapshot directories that containers use (their overlay lower dirs), which garbage collection keeps even
    /// when no image refers to them any more. The composition root connects it to the container records.
    /// </summary>
    public Func<IEnumerable<string>>? SnapshotsInUse { get; set; }

    /// <summary>The compressed blob of the image's one layer, for a checkpoint image, whose layer is the checkpoint archive.</summary>
    public string CheckpointArchiveOf(ImageRecord image) =>
        image.IsCheckpoint ? _content.PathOf(Digest.Parse(image.Layers[0])) : throw new InvalidImageRequestException($"image {image.Id} holds no checkpoint");

    /// <summary>Overlay lower dirs of the image, top layer first, as <c>lowerdir=</c> wants them.</summary>
    public IReadOnlyList<string> LowerDirs(ImageRecord image) =>
        [.. image.ChainIds.Select(c => _snapshots.PathOf(Digest.Parse(c))).Reverse()];

    /// <summary>
    /// Removes the image that a name (ID, prefix, tag or digest) finds, with all its tags and digests, then every
    /// blob and snapshot no other image or container needs: as containerd does and critest v1.36 checks ("removing
    /// image by one tag should remove all tags"). A missing image is not an error, as kubelet expects, so two
    /// concurrent removals of one image both succeed.
    /// </summary>
    public async Task RemoveAsync(string image, CancellationToken cancellationToken)
    {
        await _commitLock.WaitAsync(cancellationToken);
        try
        {
            var record = Find(image);
            if (record is null) return;
            await _images.DeleteAsync(record.Id, cancellationToken);
            CollectGarbage();
            StoreChanged();
            LogRemoved(_logger, record.Id);
        }
        finally
        {
            _commitLock.Release();
        }
    }

    /// <summary>
    /// After a restart, once <see cref="SnapshotsInUse"/> is connected: what a pull cut short by the crash left
    /// (blobs and snapshots no image names and no container uses) goes, as a removal would collect it.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        await _commitLock.WaitAsync(cancellationToken);
        try
        {
            CollectGarbage();
            StoreChanged();
        }
        finally
        {
            _commitLock.Release();
        }
    }

    /// <summary>
    /// A pull failed or was cancelled: what it wrote goes, unless an image or another pull under way uses it.
    /// Never throws: the pull's own error is what the caller hears.
    /// </summary>
    private async Task TakeBackAsync(ContentClaims.Claim claim)
    {
        var written = claim.Written;
        if (written.Count == 0) return;
        await _commitLock.WaitAsync(CancellationToken.None);
        try
        {
            var (blobs, chains) = Referenced();
            var inUse = SnapshotsInUseNow();
            var discarded = new List<string>();
            foreach (var key in written)
            {
                if (key.StartsWith("snapshot:", StringComparison.Ordinal))
                {
                    var chain = Digest.Parse(key["snapshot:".Length..]);
                    if (!chains.Contains(chain.ToString()) && !inUse.Contains(_snapshots.PathOf(chain)))
                        _claims.ReleaseUnlessClaimed(key, () => Discard(chain, discarded), except: claim);
                }
                else if (!blobs.Contains(key))
                {
                    _claims.ReleaseUnlessClaimed(key, () => _content.Delete(Digest.Parse(key)), except: claim);
                }
            }
            foreach (var snapshot in discarded) _snapshots.Purge(snapshot);
            StoreChanged();
        }
        catch (IOException e)
        {
            LogTakeBackFailed(_logger, e.Message);
        }
        finally
        {
            _commitLock.Release();
        }
    }

    /// <summary>The blobs and chain IDs that image records name.</summary>
    private (HashSet<string> Blobs, HashSet<string> Chains) Referenced()
    {
        var blobs = new HashSet<string>(StringComparer.Ordinal);
        var chains = new HashSet<string>(StringComparer.Ordinal);
        foreach (var image in _images.List())
        {
            blobs.Add(image.Id);
            blobs.Add(image.ManifestDigest);
            foreach (var digest in image.RepoDigests) blobs.Add(digest[(digest.IndexOf('@', StringComparison.Ordinal) + 1)..]);
            blobs.UnionWith(image.Layers);
            chains.UnionWith(image.ChainIds);
        }
        return (blobs, chains);
    }

    private HashSet<string> SnapshotsInUseNow() => new(SnapshotsInUse?.Invoke() ?? [], StringComparer.Ordinal);

    /// <summary>
    /// Collects the blobs and snapshots that no image, container or pull uses any more: for when a container that
    /// held on to a removed image's snapshots goes. Never throws; a failure is logged and the next collection retries.
    /// </summary>
    public async Task CollectUnusedAsync()
    {
        await _commitLock.WaitAsync();
        try
        {
            CollectGarbage();
            StoreChanged();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogCollectionFailed(_logger, e);
        }
        finally
        {
            _commitLock.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "collecting unused blobs and snapshots failed; the next removal retries")]
    private static partial void LogCollectionFailed(ILogger logger, Exception exception);

    private void Discard(Digest chain, List<string> discarded)
    {
        if (_snapshots.Discard(chain) is { } path) discarded.Add(path);
    }

    private void CollectGarbage()
    {
        var (blobs, chains) = Referenced();
        foreach (var blob in _content.List().Where(b => !blobs.Contains(b.ToString())).ToList())
            _claims.ReleaseUnlessClaimed(blob.ToString(), () => _content.Delete(blob));
        var inUse = SnapshotsInUseNow();
        var discarded = new List<string>();
        foreach (var chain in _snapshots.List().Where(c => !chains.Contains(c.ToString()) && !inUse.Contains(_snapshots.PathOf(c))).ToList())
            _claims.ReleaseUnlessClaimed(ContentClaims.Snapshot(chain.ToString()), () => Discard(chain, discarded));
        foreach (var snapshot in discarded) _snapshots.Purge(snapshot);
    }

    private static ImageReference ParseReference(string image) =>
        ImageReference.TryParse(image, out var reference, out var error) ? reference : throw new InvalidImageRequestException(error);

    public void Dispose()
    {
        _registry.Dispose();
        _images.Dispose();
        _commitLock.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "pulled {Image} as {Id}")]
    private static partial void LogPulled(ILogger logger, string image, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "a failed pull's content could not all be taken back (the next removal collects it): {Error}")]
    private static partial void LogTakeBackFailed(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "removed image {Id}")]
    private static partial void LogRemoved(ILogger logger, string id);
}
