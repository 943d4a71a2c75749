using Berth.Cri.V1;
using Berth.CriServer.Events;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    /// <summary>Streams container events from now on, until the client goes away or falls too far behind.</summary>
    public override async Task GetContainerEvents(GetEventsRequest request, IServerStreamWriter<ContainerEventResponse> responseStream, ServerCallContext context)
    {
        using var subscription = _events.Subscribe();
        try
        {
            await foreach (var response in subscription.Events.ReadAllAsync(context.CancellationToken))
                await responseStream.WriteAsync(response, context.CancellationToken);
        }
        catch (ContainerEventsOverflowException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message));
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
        }
    }
}
