using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    // kubelet takes its cgroup driver from this answer (KEP-4033), so the two always agree.
    public override Task<RuntimeConfigResponse> RuntimeConfig(RuntimeConfigRequest request, ServerCallContext context) =>
        Task.FromResult(new RuntimeConfigResponse
        {
            Linux = new LinuxRuntimeConfiguration { CgroupDriver = _systemdCgroup ? CgroupDriver.Systemd : CgroupDriver.Cgroupfs },
        });
}
