using Berth.ImageStore;
using Berth.Runtime.Containers;
using Berth.Sandbox;
using Grpc.Core;

namespace Berth.CriServer.Observability;

/// <summary>The one place where the components' typed errors become gRPC status codes.</summary>
internal static class StatusMapper
{
    public static StatusCode CodeOf(ImageStoreException exception) => exception switch
    {
        InvalidImageRequestException => StatusCode.InvalidArgument,
        ImageNotFoundException => StatusCode.NotFound,
        RegistryAuthException => StatusCode.Unauthenticated,
        RegistryException => StatusCode.Unavailable,
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
        _ => StatusCode.Unknown,
    };
}
