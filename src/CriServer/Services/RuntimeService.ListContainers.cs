using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<ListContainersResponse> ListContainers(ListContainersRequest request, ServerCallContext context)
    {
        var response = new ListContainersResponse();
        response.Containers.AddRange(SelectContainers(request.Filter).Select(ContainerMapper.ToListItem));
        return Task.FromResult(response);
    }

    public override Task StreamContainers(StreamContainersRequest request, IServerStreamWriter<StreamContainersResponse> responseStream, ServerCallContext context) =>
        ListStreaming.SendAsync(SelectContainers(request.Filter).Select(ContainerMapper.ToListItem), _config.Grpc.StreamChunkSize, chunk =>
        {
            var message = new StreamContainersResponse();

            message.Containers.AddRange(chunk);
            return message;
        }, responseStream, context.CancellationToken);

    private IEnumerable<Runtime.Containers.ContainerRecord> SelectContainers(ContainerFilter? filter)
    {
        foreach (var record in _containers.List())
        {
            if (record.State == Runtime.Containers.ContainerState.Creating) continue;
            if (filter is not null)
            {
                // IDs by prefix, as for pods: crictl passes what the operator typed.
                if (filter.Id.Length > 0 && !record.Id.StartsWith(filter.Id, StringComparison.Ordinal)) continue;
                if (filter.PodSandboxId.Length > 0 && !record.PodId.StartsWith(filter.PodSandboxId, StringComparison.Ordinal)) continue;
                if (filter.State is { } state && ContainerMapper.StateOf(record.State) != state.State) continue;
                if (filter.LabelSelector.Any(l => !record.Labels.TryGetValue(l.Key, out var value) || value != l.Value)) continue;
            }
            yield return record;
        }
    }
}
