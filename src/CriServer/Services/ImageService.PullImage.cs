using Berth.Cri.V1;
using Berth.ImageStore;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class ImageService
{
    public override async Task<PullImageResponse> PullImage(PullImageRequest request, ServerCallContext context)
    {
        var reference = RequireImage(request.Image, "image.image");
        var image = await _images.PullAsync(reference, Credentials(request.Auth), context.CancellationToken);
        return new PullImageResponse { ImageRef = image.Id };
    }

    private static RegistryCredentials? Credentials(AuthConfig? auth)
    {
        if (auth is null) return null;
        static string? Value(string text) => text.Length == 0 ? null : text;
        var credentials = new RegistryCredentials
        {
            Username = Value(auth.Username),
            Password = Value(auth.Password),
            Auth = Value(auth.Auth),
            IdentityToken = Value(auth.IdentityToken),
            RegistryToken = Value(auth.RegistryToken),
        };
        return credentials.IsEmpty ? null : credentials;
    }

    private static string RequireImage(ImageSpec? spec, string field) =>
        spec is { Image.Length: > 0 } ? spec.Image : throw new RpcException(new Status(StatusCode.InvalidArgument, $"{field}: an image reference is required"));
}
