using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<StatusResponse> Status(StatusRequest request, ServerCallContext context)
    {
        var status = new RuntimeStatus();
        status.Conditions.Add(new RuntimeCondition { Type = "RuntimeReady", Status = true });
        var (networkReady, reason) = await _sandboxes.NetworkStatusAsync(context.CancellationToken);
        status.Conditions.Add(networkReady
            ? new RuntimeCondition { Type = "NetworkReady", Status = true }
            : new RuntimeCondition { Type = "NetworkReady", Status = false, Reason = "NetworkPluginNotReady", Message = $"cni: {reason}" });

        // Supplemental groups policy (Strict) is honoured; user namespaces are per handler.
        var response = new StatusResponse { Status = status, Features = new RuntimeFeatures { SupplementalGroupsPolicy = true } };
        // The default handler ("") first, as kubelet looks for it, then each configured handler by name.
        foreach (var name in _config.Runtime.Handlers.Keys.Order(StringComparer.Ordinal).Prepend(""))
        {
            var features = await _containers.FeaturesAsync(name);
            response.RuntimeHandlers.Add(new RuntimeHandler
            {
                Name = name,
                Features = new RuntimeHandlerFeatures
                {
                    RecursiveReadOnlyMounts = features?.RecursiveReadonlyMounts ?? false,
                    UserNamespaces = features?.UserNamespaces ?? false,
                },
            });
        }
        if (request.Verbose)
        {
            // crictl info parses every value as JSON, so each one is a JSON document.
            response.Info.Add("config", StatusInfo.ConfigJson(_config));
            response.Info.Add("version", StatusInfo.VersionJson());
            response.Info.Add("pulls", StatusInfo.PullsJson(_images.PullsInProgress()));
            response.Info.Add("cdi", StatusInfo.CdiJson(_containers.Devices.State()));
            response.Info.Add("nri", StatusInfo.NriJson(_config, _nri.Adaptation?.Plugins ?? []));
            response.Info.Add("tracing", StatusInfo.TracingJson(_config));
        }
        return response;
    }
}
