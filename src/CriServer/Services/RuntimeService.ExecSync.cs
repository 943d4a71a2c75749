using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<ExecSyncResponse> ExecSync(ExecSyncRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        if (request.Cmd.Count == 0) throw InvalidArgument("cmd is required");
        if (request.Timeout < 0) throw InvalidArgument($"timeout: {request.Timeout} is negative");
        try
        {
            // Beyond a timer's reach (49 days) a timeout is no timeout, as 0 is.
            var timeout = request.Timeout > 49L * 24 * 3600 ? TimeSpan.Zero : TimeSpan.FromSeconds(request.Timeout);
            var result = await _containers.ExecSyncAsync(_containers.ResolveId(request.ContainerId), [.. request.Cmd], timeout, context.CancellationToken);
            return new ExecSyncResponse
            {
                ExitCode = result.ExitCode,
                Stdout = Google.Protobuf.ByteString.CopyFrom(result.Stdout),
                Stderr = Google.Protobuf.ByteString.CopyFrom(result.Stderr),
            };
        }
        catch (TimeoutException e)
        {
            // kubelet reads DeadlineExceeded from ExecSync as the probe's timeout.
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, e.Message));
        }
    }
}
