using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<ListPodSandboxResponse> ListPodSandbox(ListPodSandboxRequest request, ServerCallContext context)
    {
        var filter = request.Filter;
        var response = new ListPodSandboxResponse();
        foreach (var record in _sandboxes.List())
        {
            if (!string.IsNullOrEmpty(filter?.Id) && !record.Id.StartsWith(filter.Id, StringComparison.Ordinal)) continue;
            var item = SandboxMapper.ToListItem(record);
            if (filter?.State is { } state && item.State != state.State) continue;
            if (filter is not null && filter.LabelSelector.Any(l => !record.Labels.TryGetValue(l.Key, out var v) || v != l.Value)) continue;
            response.Items.Add(item);
        }
        return Task.FromResult(response);
    }
}
