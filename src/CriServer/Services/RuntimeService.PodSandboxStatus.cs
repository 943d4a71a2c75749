using Berth.Cri.V1;
using Berth.Sandbox;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<PodSandboxStatusResponse> PodSandboxStatus(PodSandboxStatusRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var record = FindSandbox(request.PodSandboxId)
                     ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod sandbox {request.PodSandboxId} not found"));
        var response = new PodSandboxStatusResponse { Status = SandboxMapper.ToStatus(record) };
        if (request.Verbose) response.Info.Add("info", SandboxMapper.VerboseInfo(record));
        return Task.FromResult(response);
    }

    /// <summary>By full ID or a unique prefix, as crictl abbreviates them.</summary>
    private SandboxRecord? FindSandbox(string id)
    {
        if (_sandboxes.Get(id) is { } exact) return exact;
        var matches = _sandboxes.List().Where(s => s.Id.StartsWith(id, StringComparison.Ordinal)).Take(2).ToList();
        return matches.Count == 1 ? matches[0] : null;
    }
}
