using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class ImageService
{
    public override Task<ImageFsInfoResponse> ImageFsInfo(ImageFsInfoRequest request, ServerCallContext context)
    {
        var usage = _images.Usage();
        var response = new ImageFsInfoResponse();
        response.ImageFilesystems.Add(new FilesystemUsage
        {
            Timestamp = usage.Timestamp.ToUnixTimeMilliseconds() * 1_000_000,
            FsId = new FilesystemIdentifier { Mountpoint = usage.Mountpoint },
            UsedBytes = new UInt64Value { Value = usage.UsedBytes },
            InodesUsed = new UInt64Value { Value = usage.InodesUsed },
        });
        // The containers' writable layers, as the stats collector last measured them (never walked here).
        var (bytes, inodes, timestamp) = _stats.WritableLayersTotal();
        response.ContainerFilesystems.Add(new FilesystemUsage
        {
            Timestamp = timestamp.ToUnixTimeMilliseconds() * 1_000_000,
            FsId = new FilesystemIdentifier { Mountpoint = _containerOptions.DataDirectory },
            UsedBytes = new UInt64Value { Value = bytes },
            InodesUsed = new UInt64Value { Value = inodes },
        });
        return Task.FromResult(response);
    }
}
