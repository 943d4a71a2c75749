using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class ImageService
{
    public override async Task<RemoveImageResponse> RemoveImage(RemoveImageRequest request, ServerCallContext context)
    {
        await _images.RemoveAsync(RequireImage(request.Image, "image.image"), context.CancellationToken);
        return new RemoveImageResponse();
    }
}
