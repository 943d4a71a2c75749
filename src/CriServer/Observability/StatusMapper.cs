using Berth.ImageStore;
using Berth.Runtime.Containers;
using Berth.Sandbox;
using Grpc.Core;

namespace Berth.CriServer.Observability;

/// <summary>The one place where the components' typed errors become gRPC status codes.</summary>
internal static class StatusMapper
{
    private const int ENoSpc = 28, EDQuot = 122;

    /// <summary>
    /// The I/O error, anywhere in the chain, that says the disk (or a quota) is full: ResourceExhausted, whatever
    /// component met it, because the caller may retry once space is back.
    /// </summary>
    public static IOException? StorageFull(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is IOException { HResult: ENoSpc or EDQuot } io) return io;
        }
        return null;
    }

    public static StatusCode CodeOf(ImageStoreException exception) => exception switch
    {
        InvalidImageRequestException => StatusCode.InvalidArgument,
        ImageNotFoundException => StatusCode.NotFound,
        RegistryAuthException => StatusCode.Unauthenticated,
        RegistryException => StatusCode.Unavailable,
        PullStalledException => StatusCode.DeadlineExceeded,
        // Content that fails its digest or is hostile: the image cannot be used as it is.
        ImageFormatException => StatusCode.FailedPrecondition,
        _ => StatusCode.Unknown,
    };

    public static StatusCode CodeOf(SandboxException exception) => exception switch
    {
        SandboxRequestException => StatusCode.InvalidArgument,
        SandboxExistsException => StatusCode.AlreadyExists,
        SandboxNotFoundException => StatusCode.NotFound,
        _ => StatusCode.Unknown,
    };

    public static StatusCode CodeOf(ContainerException exception) => exception switch
    {
        ContainerRequestException => StatusCode.InvalidArgument,
        ContainerExistsException => StatusCode.AlreadyExists,
        ContainerNotFoundException => StatusCode.NotFound,
        ContainerStateException => StatusCode.FailedPrecondition,
        ContainerPreconditionException => StatusCode.FailedPrecondition,
        ContainerTimeoutException => StatusCode.DeadlineExceeded,
        ContainerLimitException => StatusCode.ResourceExhausted,
        _ => StatusCode.Unknown,
    };
}
