namespace Berth.CriServer.Services;

/// <summary>CRI ImageService, one partial file per RPC. RPCs not overridden answer Unimplemented.</summary>
public sealed partial class ImageService : Cri.V1.ImageService.ImageServiceBase
{
}
