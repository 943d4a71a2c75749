using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class ImageService
{
    public override Task<ListImagesResponse> ListImages(ListImagesRequest request, ServerCallContext context)
    {
        var response = new ListImagesResponse();
        response.Images.AddRange(SelectImages(request.Filter));
        return Task.FromResult(response);
    }

    public override Task StreamImages(StreamImagesRequest request, IServerStreamWriter<StreamImagesResponse> responseStream, ServerCallContext context) =>
        ListStreaming.SendAsync(SelectImages(request.Filter), _config.Grpc.StreamChunkSize, chunk =>
        {
            var message = new StreamImagesResponse();
            message.Images.AddRange(chunk);
            return message;
        }, responseStream, context.CancellationToken);

    private IEnumerable<Image> SelectImages(ImageFilter? filter)
    {
        if (filter?.Image is { Image.Length: > 0 } spec)
        {
            if (_images.Find(spec.Image) is { } image) yield return ImageMapper.ToProto(image, _pinned.Covers(image));
            yield break;
        }
        foreach (var image in _images.List()) yield return ImageMapper.ToProto(image, _pinned.Covers(image));
    }
}
