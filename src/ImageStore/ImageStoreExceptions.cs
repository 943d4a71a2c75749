namespace Berth.ImageStore;

/// <summary>Base of the errors the image store reports; CriServer maps each kind to a gRPC status.</summary>
public abstract class ImageStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The caller asked for something malformed (a bad reference, an unsupported option).</summary>
public sealed class InvalidImageRequestException(string message) : ImageStoreException(message);

/// <summary>The image (or the tag or digest in the registry) does not exist.</summary>
public sealed class ImageNotFoundException(string message, Exception? inner = null) : ImageStoreException(message, inner);

/// <summary>The registry refused the credentials, or needs some.</summary>
public sealed class RegistryAuthException(string message) : ImageStoreException(message);

/// <summary>The registry could not be reached or answered with an error.</summary>
public sealed class RegistryException(string message, Exception? inner = null) : ImageStoreException(message, inner);

/// <summary>Content that is malformed, unsupported, fails its digest, or is hostile.</summary>
public class ImageFormatException(string message, Exception? inner = null) : ImageStoreException(message, inner);

/// <summary>A layer entry that would escape its root, or otherwise may not be unpacked.</summary>
public sealed class UnsafeLayerException(string message) : ImageFormatException(message);

/// <summary>A download brought no byte for the configured progress timeout.</summary>
public sealed class PullStalledException(string message) : ImageStoreException(message);
