using Berth.CriServer.Configuration;
using Berth.CriServer.Stats;
using Berth.ImageStore;

namespace Berth.CriServer.Services;

/// <summary>CRI ImageService, one partial file per RPC; the work is the image store's (<see cref="ImageManager"/>).</summary>
public sealed partial class ImageService(ImageManager images, BerthConfig config, StatsCollector stats, Runtime.Containers.ContainerOptions containers)
    : Cri.V1.ImageService.ImageServiceBase
{
    private readonly ImageManager _images = images;
    private readonly BerthConfig _config = config;
    private readonly StatsCollector _stats = stats;
    private readonly Runtime.Containers.ContainerOptions _containerOptions = containers;
    private readonly ImageStore.References.PinnedImages _pinned = new(config.Images.Pinned);
}
