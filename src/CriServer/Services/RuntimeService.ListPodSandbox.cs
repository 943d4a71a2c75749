using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<ListPodSandboxResponse> ListPodSandbox(ListPodSandboxRequest request, ServerCallContext context)
    {
        var response = new ListPodSandboxResponse();
        response.Items.AddRange(SelectSandboxes(request.Filter).Select(SandboxMapper.ToListItem));
        return Task.FromResult(response);
    }

    public override Task StreamPodSandboxes(StreamPodSandboxesRequest request, IServerStreamWriter<StreamPodSandboxesResponse> responseStream, ServerCallContext context) =>
        ListStreaming.SendAsync(SelectSandboxes(request.Filter).Select(SandboxMapper.ToListItem), _config.Grpc.StreamChunkSize, chunk =>
        {
            var message = new StreamPodSandboxesResponse();
            message.PodSandboxes.AddRange(chunk);
            return message;
        }, responseStream, context.CancellationToken);

    /// <summary>The pods a filter selects: ID by unique prefix, state, labels.</summary>
    private IEnumerable<Berth.Sandbox.SandboxRecord> SelectSandboxes(PodSandboxFilter? filter)
    {
        foreach (var record in _sandboxes.List())
        {
            if (!string.IsNullOrEmpty(filter?.Id) && !record.Id.StartsWith(filter.Id, StringComparison.Ordinal)) continue;
            if (filter?.State is { } state && SandboxMapper.StateOf(record) != state.State) continue;
            if (filter is not null && filter.LabelSelector.Any(l => !record.Labels.TryGetValue(l.Key, out var v) || v != l.Value)) continue;
            yield return record;
        }
    }
}
