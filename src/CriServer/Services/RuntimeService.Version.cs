using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    private static readonly VersionResponse VersionReply = new()
    {
        Version = BuildInfo.KubeletApiVersion,
        RuntimeName = BuildInfo.RuntimeName,
        RuntimeVersion = BuildInfo.Version,
        RuntimeApiVersion = BuildInfo.CriApiVersion,
    };

    public override Task<VersionResponse> Version(VersionRequest request, ServerCallContext context) =>
        Task.FromResult(VersionReply);
}
