using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context)
    {
        var status = new RuntimeStatus();
        status.Conditions.Add(new RuntimeCondition { Type = "RuntimeReady", Status = true });
        // Pod networking arrives with the CNI component; until then kubelet must not schedule pods here.
        status.Conditions.Add(new RuntimeCondition
        {
            Type = "NetworkReady",
            Status = false,
            Reason = "NetworkPluginNotReady",
            Message = "berth does not set up pod networks yet: no CNI support is built in",
        });

        var response = new StatusResponse { Status = status, Features = new RuntimeFeatures() };
        if (request.Verbose)
        {
            // crictl info parses every value as JSON, so each one is a JSON document.
            response.Info.Add("config", StatusInfo.ConfigJson(_config));
            response.Info.Add("version", StatusInfo.VersionJson());
        }
        return Task.FromResult(response);
    }
}
