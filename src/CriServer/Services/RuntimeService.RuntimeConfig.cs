using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    // Berth manages cgroups by path (cgroupfs); kubelet must be configured with cgroupDriver: cgroupfs to match.
    private static readonly RuntimeConfigResponse RuntimeConfigReply = new()
    {
        Linux = new LinuxRuntimeConfiguration { CgroupDriver = CgroupDriver.Cgroupfs },
    };

    public override Task<RuntimeConfigResponse> RuntimeConfig(RuntimeConfigRequest request, ServerCallContext context) =>
        Task.FromResult(RuntimeConfigReply);
}
