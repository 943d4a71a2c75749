using Berth.ImageStore.Content;
using Berth.ImageStore.References;

namespace Berth.ImageStore.Distribution;

/// <summary>Where a pull reads manifests and blobs from: a registry, or an image archive on disk.</summary>
internal interface IImageSource
{
    Task<FetchedManifest> GetManifestAsync(ImageReference image, string tagOrDigest, CancellationToken cancellationToken);

    /// <summary>The blob's raw bytes; the caller verifies them against the digest.</summary>
    Task<Stream> OpenBlobAsync(ImageReference image, Digest digest, CancellationToken cancellationToken);
}

/// <summary>A manifest or index as fetched, with the digest of its exact bytes.</summary>
internal sealed record FetchedManifest(byte[] Content, string MediaType, Digest Digest);

/// <summary>A registry seen through one pull's credentials.</summary>
internal sealed class RegistrySource(RegistryClient registry, RegistryCredentials? credentials) : IImageSource
{
    public Task<FetchedManifest> GetManifestAsync(ImageReference image, string tagOrDigest, CancellationToken cancellationToken) =>
        registry.GetManifestAsync(image, tagOrDigest, credentials, cancellationToken);

    public Task<Stream> OpenBlobAsync(ImageReference image, Digest digest, CancellationToken cancellationToken) =>
        registry.OpenBlobAsync(image, digest, credentials, cancellationToken);
}
