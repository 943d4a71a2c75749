using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<StopContainerResponse> StopContainer(StopContainerRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        if (request.Timeout < 0) throw InvalidArgument($"timeout: {request.Timeout} is negative");
        var grace = GraceWithin(TimeSpan.FromSeconds(Math.Min(request.Timeout, (long)int.MaxValue)), context.Deadline);
        var id = _containers.ResolveId(request.ContainerId);
        var wasRunning = _containers.Get(id) is { State: Runtime.Containers.ContainerState.Created or Runtime.Containers.ContainerState.Running };
        await _containers.StopAsync(id, grace, context.CancellationToken);
        // Once per container: a repeated stop of a stopped one tells the plugins nothing new.
        if (wasRunning) await _nri.StopContainerAsync(id, context.CancellationToken);
        return new StopContainerResponse();
    }

    /// <summary>
    /// The grace period a stop can give and still answer before the caller's deadline: SIGKILL comes early enough
    /// (half of what is left, at most 2 s, before it; the kill, the exit and runc delete take a few hundred ms) for the kill and the exit to fit. A stop never outlives
    /// its caller, or kubelet retries against a container that is still dying.
    /// </summary>
    internal static TimeSpan GraceWithin(TimeSpan timeout, DateTime deadline)
    {
        if (deadline == DateTime.MaxValue) return timeout;
        var left = deadline - DateTime.UtcNow;
        var room = left - TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(2).Ticks, left.Ticks / 2));
        return room <= TimeSpan.Zero ? TimeSpan.Zero : room < timeout ? room : timeout;
    }
}
