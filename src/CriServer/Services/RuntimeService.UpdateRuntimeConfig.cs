using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<UpdateRuntimeConfigResponse> UpdateRuntimeConfig(UpdateRuntimeConfigRequest request, ServerCallContext context)
    {
        _sandboxes.SetPodCidr(request.RuntimeConfig?.NetworkConfig?.PodCidr);
        return Task.FromResult(new UpdateRuntimeConfigResponse());
    }
}
