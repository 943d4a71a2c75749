using Berth.CriServer.Configuration;
using Berth.CriServer.Events;
using Berth.CriServer.Stats;
using Berth.CriServer.Streaming;
using Berth.ImageStore;
using Berth.Runtime.Containers;
using Berth.Sandbox;

namespace Berth.CriServer.Services;

/// <summary>
/// CRI RuntimeService. One partial file per RPC or small group of RPCs
/// (RuntimeService.Version.cs, RuntimeService.Status.cs, ...); every RPC of the proto is overridden.
/// </summary>
public sealed partial class RuntimeService(
    BerthConfig config, SandboxManager sandboxes, ContainerManager containers, ImageManager images, StreamingUrls streaming,
    StatsCollector stats, ContainerEvents events, ContainerOptions containerOptions, Nri.NriBridge nri)
    : Cri.V1.RuntimeService.RuntimeServiceBase
{
    private readonly BerthConfig _config = config;
    private readonly SandboxManager _sandboxes = sandboxes;
    private readonly ContainerManager _containers = containers;
    private readonly ImageManager _images = images;
    private readonly StreamingUrls _streaming = streaming;
    private readonly StatsCollector _stats = stats;
    private readonly ContainerEvents _events = events;
    private readonly Nri.NriBridge _nri = nri;

    /// <summary>Where writable layers live: the filesystem ContainerStats' writable_layer names.</summary>
    private readonly string _containerData = containerOptions.DataDirectory;

    private readonly Berth.Runtime.Cgroups.PodCgroupWriter _podCgroups = new(containerOptions.Node);

    private readonly bool _systemdCgroup = containerOptions.Node.SystemdCgroup;
}
