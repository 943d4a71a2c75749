using Berth.ImageStore;

namespace Berth.CriServer.Services;

/// <summary>CRI ImageService, one partial file per RPC; the work is the image store's (<see cref="ImageManager"/>).</summary>
public sealed partial class ImageService(ImageManager images) : Cri.V1.ImageService.ImageServiceBase
{
    private readonly ImageManager _images = images;
}
