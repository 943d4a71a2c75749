namespace Berth.ImageStore.Oci;

/// <summary>The manifest, config and layer media types of the OCI image spec and Docker's schema 2.</summary>
public static class MediaTypes
{
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciLayer = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string OciLayerNonDistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string DockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
    public const string DockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    public const string DockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
    public const string DockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// <summary>What a pull asks the registry for, best first.</summary>
    public const string ManifestAccept =
        OciIndex + ", " + DockerManifestList + ", " + OciManifest + ", " + DockerManifest;

    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;

    public static bool IsSchema1(string? mediaType) => mediaType is DockerSchema1 or DockerSchema1Signed;

    public static LayerCompression LayerCompressionOf(string mediaType) => mediaType switch
    {
        OciLayer or DockerLayer or "application/vnd.oci.image.layer.nondistributable.v1.tar" => LayerCompression.None,
        OciLayerGzip or DockerLayerGzip or DockerForeignLayerGzip or OciLayerNonDistributableGzip => LayerCompression.Gzip,
        OciLayerZstd or "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => LayerCompression.Zstd,
        _ => throw new ImageFormatException($"layer media type '{mediaType}' is not supported"),
    };
}

public enum LayerCompression
{
    None,
    Gzip,
    Zstd,
}
