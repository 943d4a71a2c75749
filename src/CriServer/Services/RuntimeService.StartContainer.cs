using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<StartContainerResponse> StartContainer(StartContainerRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        var id = _containers.ResolveId(request.ContainerId);
        await _nri.StartContainerAsync(id, context.CancellationToken);
        try
        {
            await _containers.StartAsync(id, context.CancellationToken);
        }
        catch
        {
            // Plugins told it starts hear that it did not.
            await _nri.StopContainerAsync(id, CancellationToken.None);
            throw;
        }
        await _nri.PostStartContainerAsync(id, context.CancellationToken);
        return new StartContainerResponse();
    }
}
