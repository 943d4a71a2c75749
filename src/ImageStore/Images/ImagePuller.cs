using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text.Json;
using Berth.ImageStore.Content;
using Berth.ImageStore.Distribution;
using Berth.ImageStore.Oci;
using Berth.ImageStore.References;
using Berth.ImageStore.Snapshots;
using Microsoft.Extensions.Logging;

namespace Berth.ImageStore.Images;

/// <summary>
/// Pulls one image: resolves the reference (picking the platform from an index), fetches the config,
/// then downloads, verifies and unpacks the layers in parallel, streaming: bytes are hashed, kept as a blob,
/// decompressed and unpacked as they arrive, and a snapshot commits only after both digests match.
/// </summary>
internal sealed partial class ImagePuller(ContentStore content, SnapshotStore snapshots, ImageStoreOptions options, ILogger logger)
{
    private const long MaxConfigSize = 8 * 1024 * 1024;
    private readonly ConcurrentDictionary<string, Lazy<Task>> _layers = new(StringComparer.Ordinal);

    /// <summary>The pulls under way and their bytes, for Status(verbose) and berth pull.</summary>
    public PullProgress Progress { get; } = new();

    /// <summary>Pulls into the stores; every blob and snapshot it uses is claimed in <paramref name="claim"/>, and those it wrote noted there.</summary>
    public async Task<ImageRecord> PullAsync(ImageReference reference, IImageSource source, ContentClaims.Claim claim, CancellationToken cancellationToken)
    {
        var top = await source.GetManifestAsync(reference, reference.Digest?.ToString() ?? reference.Tag!, cancellationToken);
        await PutAsync(claim, top.Digest, top.Content, cancellationToken);

        var manifest = top;
        if (MediaTypes.IsIndex(top.MediaType))
        {
            var chosen = ChoosePlatform(reference, Parse(top.Content, "index"));
            manifest = await source.GetManifestAsync(reference, chosen.Digest, cancellationToken);
            await PutAsync(claim, manifest.Digest, manifest.Content, cancellationToken);
        }
        if (!MediaTypes.IsManifest(manifest.MediaType))
            throw new ImageFormatException($"{reference}: manifest media type '{manifest.MediaType}' is not supported");

        var document = Parse(manifest.Content, "manifest");
        var configDescriptor = document.Config ?? throw new ImageFormatException($"{reference}: the manifest has no config");
        var layers = document.Layers ?? [];
        var configDigest = ParseDigest(configDescriptor.Digest, "config");
        var configBytes = await FetchConfigAsync(reference, configDescriptor, configDigest, source, claim, cancellationToken);
        var config = JsonSerializer.Deserialize(configBytes, OciJsonContext.Default.ImageConfigDocument)
                     ?? throw new ImageFormatException($"{reference}: the image config is empty");

        var diffIds = (config.RootFs?.DiffIds ?? []).Select(d => ParseDigest(d, "diff ID")).ToList();
        if (diffIds.Count != layers.Count)
            throw new ImageFormatException($"{reference}: the manifest has {layers.Count} layers but the config lists {diffIds.Count} diff IDs");
        var chainIds = ChainId.Compute(diffIds);

        var progress = Progress.Begin(reference.ToString(), [.. layers.Select(l => (l.Digest, l.Size))]);
        try
        {
            await Parallel.ForEachAsync(
                Enumerable.Range(0, layers.Count),
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.MaxConcurrentDownloads), CancellationToken = cancellationToken },
                async (i, ct) =>
                {
                    await EnsureLayerAsync(reference, layers[i], diffIds[i], chainIds[i], source, claim, ct);
                    progress.Finished[layers[i].Digest] = 0;
                });
        }
        finally
        {
            Progress.End(progress);
        }

        return new ImageRecord
        {
            Id = configDigest.ToString(),
            RepoTags = reference.RepoTag is { } tag ? [tag] : [],
            RepoDigests = [$"{reference.Name}@{top.Digest}"],
            ManifestDigest = manifest.Digest.ToString(),
            ManifestMediaType = manifest.MediaType,
            Size = configDescriptor.Size + layers.Sum(l => l.Size),
            Layers = [.. layers.Select(l => l.Digest)],
            ChainIds = [.. chainIds.Select(c => c.ToString())],
            User = config.Config?.User,
            Annotations = document.Annotations,
        };
    }

    private Descriptor ChoosePlatform(ImageReference reference, ManifestDocument index)
    {
        var candidates = (index.Manifests ?? []).Where(m => MediaTypes.IsManifest(m.MediaType) || m.MediaType.Length == 0).ToList();
        var match = candidates.FirstOrDefault(m => Matches(m.Platform, options.Variant))
                    ?? (options.Variant is null ? null : candidates.FirstOrDefault(m => Matches(m.Platform, null)));
        if (match is not null) return match;
        var available = string.Join(", ", candidates.Select(m => m.Platform is { } p ? $"{p.Os}/{p.Architecture}{(p.Variant is null ? "" : "/" + p.Variant)}" : "unknown"));
        throw new ImageNotFoundException($"{reference}: no manifest for {options.Os}/{options.Architecture} in the index (it has: {available})");
    }

    private bool Matches(Platform? platform, string? variant) =>
        platform is not null && platform.Os == options.Os && platform.Architecture == options.Architecture
        && (variant is null || platform.Variant == variant);

    private async Task PutAsync(ContentClaims.Claim claim, Digest digest, byte[] bytes, CancellationToken cancellationToken)
    {
        claim.Use(digest.ToString());
        if (content.Contains(digest)) return;
        await content.PutAsync(digest, bytes, cancellationToken);
        claim.Wrote(digest.ToString());
    }

    private async Task<byte[]> FetchConfigAsync(
        ImageReference reference, Descriptor descriptor, Digest digest, IImageSource source, ContentClaims.Claim claim, CancellationToken cancellationToken)
    {
        if (descriptor.MediaType is not (MediaTypes.OciConfig or MediaTypes.DockerConfig))
            throw new ImageFormatException($"{reference}: config media type '{descriptor.MediaType}' is not an image config");
        if (descriptor.Size is < 0 or > MaxConfigSize)
            throw new ImageFormatException($"{reference}: the config's declared size {descriptor.Size} is out of bounds");
        claim.Use(digest.ToString());
        if (content.Contains(digest)) return await content.ReadAsync(digest, cancellationToken);

        await using var blob = await source.OpenBlobAsync(reference, digest, cancellationToken);
        await using var verifying = new VerifyingStream(blob, digest, descriptor.Size, sink: null);
        using var buffer = new MemoryStream();
        await verifying.CopyToAsync(buffer, cancellationToken);
        var bytes = buffer.ToArray();
        await PutAsync(claim, digest, bytes, cancellationToken);
        return bytes;
    }

    /// <summary>Makes sure the layer's snapshot exists; concurrent pulls needing the same layer share one download.</summary>
    private async Task EnsureLayerAsync(
        ImageReference reference, Descriptor layer, Digest diffId, Digest chainId, IImageSource source, ContentClaims.Claim claim,
        CancellationToken cancellationToken)
    {
        var digest = ParseDigest(layer.Digest, "layer");
        claim.Use(digest.ToString());
        claim.Use(ContentClaims.Snapshot(chainId.ToString()));
        var key = chainId.Hex;
        while (true)
        {
            if (snapshots.Contains(chainId) && content.Contains(digest)) return;
            // Whatever of the two is missing now, this pull makes (or shares the making of) and may take back.
            if (!content.Contains(digest)) claim.Wrote(digest.ToString());
            if (!snapshots.Contains(chainId)) claim.Wrote(ContentClaims.Snapshot(chainId.ToString()));

            var mine = new Lazy<Task>(async () =>
            {
                try
                {
                    await DownloadAndUnpackAsync(reference, layer, digest, diffId, chainId, source, cancellationToken);
                }
                finally
                {
                    _layers.TryRemove(key, out var _);
                }
            });
            var shared = _layers.GetOrAdd(key, mine);
            if (ReferenceEquals(shared, mine))
            {
                // Its own unpack is awaited to the end, cancelled or not: a pull that fails takes back what it made, and a
                // snapshot still being committed after the take-back would be left behind.
                await shared.Value;
                return;
            }
            try
            {
                await shared.Value.WaitAsync(cancellationToken);
                return;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // The pull that was fetching the layer was given up by its callers (another image with this layer, say);
                // this pull still wants it, and fetches it itself. Its claim kept the finished parts from being taken back.
            }
        }
    }

    private async Task DownloadAndUnpackAsync(
        ImageReference reference, Descriptor layer, Digest digest, Digest diffId, Digest chainId,
        IImageSource source, CancellationToken cancellationToken)
    {
        var compression = MediaTypes.LayerCompressionOf(layer.MediaType);
        if (layer.Size < 0) throw new ImageFormatException($"layer {digest}: negative size");
        LogLayerStart(logger, reference.ToString(), digest.ToString(), layer.Size);

        var haveBlob = content.Contains(digest);
        var haveSnapshot = snapshots.Contains(chainId);
        await using var blob = await source.OpenBlobAsync(reference, digest, cancellationToken);
        await using var ingest = haveBlob ? null : content.BeginIngest(digest, layer.Size);
        await using var verifying = new VerifyingStream(blob, digest, layer.Size, ingest?.File);
        using var downloading = Progress.Download(digest.ToString(), () => verifying.BytesRead);

        if (haveSnapshot)
        {
            // Only the blob went missing: fetch and verify it without unpacking again.
            await verifying.DrainAsync(cancellationToken);
            ingest?.Commit(verifying.Digest(), verifying.BytesRead);
            return;
        }

        await using Stream decompressed = compression switch
        {
            LayerCompression.Gzip => new GZipStream(verifying, CompressionMode.Decompress, leaveOpen: true),
            LayerCompression.Zstd => new ZstdSharp.DecompressionStream(verifying, leaveOpen: true),
            _ => new HashingStream(verifying), // a pass-through that leaves the source open
        };
        await using var uncompressed = new HashingStream(decompressed);
        try
        {
            await snapshots.CommitLayerAsync(chainId, uncompressed, async () =>
            {
                await uncompressed.DrainAsync(cancellationToken); // the tar's end-of-archive padding
                await verifying.DrainAsync(cancellationToken);    // a compression trailer; checks size and digest
                var actualDiffId = uncompressed.Digest();
                if (actualDiffId != diffId)
                    throw new ImageFormatException($"layer {digest}: uncompressed content has digest {actualDiffId}, the config says {diffId}");
                ingest?.Commit(verifying.Digest(), verifying.BytesRead);
            }, cancellationToken);
        }
        catch (UnsafeLayerException e)
        {
            throw new UnsafeLayerException($"layer {digest}: {e.Message}");
        }
        catch (ImageFormatException e) when (!e.Message.StartsWith("layer ", StringComparison.Ordinal))
        {
            throw new ImageFormatException($"layer {digest}: {e.Message}", e);
        }
        catch (InvalidDataException e)
        {
            throw new ImageFormatException($"layer {digest}: {e.Message}", e);
        }
        catch (ZstdSharp.ZstdException e)
        {
            throw new ImageFormatException($"layer {digest}: {e.Message}", e);
        }
        catch (EndOfStreamException e)
        {
            throw new ImageFormatException($"layer {digest} is truncated: {e.Message}", e);
        }
        LogLayerDone(logger, digest.ToString(), chainId.ToString());
    }

    private static ManifestDocument Parse(byte[] content, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(content, OciJsonContext.Default.ManifestDocument)
                   ?? throw new ImageFormatException($"the {what} is empty");
        }
        catch (JsonException e)
        {
            throw new ImageFormatException($"the {what} is not valid JSON: {e.Message}", e);
        }
    }

    private static Digest ParseDigest(string text, string what) =>
        Digest.TryParse(text, out var digest) ? digest : throw new ImageFormatException($"{what} digest '{text}' is not a sha256 digest");

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Image}: fetching layer {Digest} ({Size} bytes)")]
    private static partial void LogLayerStart(ILogger logger, string image, string digest, long size);

    [LoggerMessage(Level = LogLevel.Debug, Message = "layer {Digest} unpacked as snapshot {ChainId}")]
    private static partial void LogLayerDone(ILogger logger, string digest, string chainId);
}
