using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class ImageService
{
    public override Task<ListImagesResponse> ListImages(ListImagesRequest request, ServerCallContext context)
    {
        var response = new ListImagesResponse();
        if (request.Filter?.Image is { Image.Length: > 0 } filter)
        {
            if (_images.Find(filter.Image) is { } image) response.Images.Add(ImageMapper.ToProto(image));
        }
        else
        {
            foreach (var image in _images.List()) response.Images.Add(ImageMapper.ToProto(image));
        }
        return Task.FromResult(response);
    }
}
