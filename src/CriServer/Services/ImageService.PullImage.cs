using Berth.Cri.V1;
using Berth.ImageStore;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class ImageService
{
    public override async Task<PullImageResponse> PullImage(PullImageRequest request, ServerCallContext context)
    {
        var reference = RequireImage(request.Image, "image.image");
        if (!Berth.ImageStore.References.ImageReference.TryParse(reference, out _, out var error))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"image.image: {error}"));
        var image = await _images.PullAsync(reference, Credentials(request.Auth), context.CancellationToken);
        return new PullImageResponse { ImageRef = image.Id };
    }

    private static RegistryCredentials? Credentials(AuthConfig? auth)
    {
        if (auth is null) return null;
        // Credentials end up in HTTP headers, where a control character would end or forge one.
        static string? Value(string text, string field) =>
            text.Length == 0 ? null
            : text.AsSpan().ContainsAnyInRange('\0', '\x1f') || text.Contains('\x7f', StringComparison.Ordinal)
                ? throw new RpcException(new Status(StatusCode.InvalidArgument, $"auth.{field}: contains a control character"))
                : text;
        var credentials = new RegistryCredentials
        {
            Username = Value(auth.Username, "username"),
            Password = Value(auth.Password, "password"),
            Auth = Value(auth.Auth, "auth"),
            IdentityToken = Value(auth.IdentityToken, "identity_token"),
            RegistryToken = Value(auth.RegistryToken, "registry_token"),
        };
        return credentials.IsEmpty ? null : credentials;
    }

    private static string RequireImage(ImageSpec? spec, string field) =>
        spec is { Image.Length: > 0 } ? spec.Image : throw new RpcException(new Status(StatusCode.InvalidArgument, $"{field}: an image reference is required"));
}
