using Berth.Cri.V1;
using Berth.CriServer.Streaming;
using Berth.Streaming;
using Berth.Streaming.Server;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<ExecResponse> Exec(ExecRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        if (request.Cmd.Count == 0) throw InvalidArgument("cmd is required");
        var options = StreamOptions(request.Stdin, request.Stdout, request.Stderr, request.Tty);
        var container = _containers.RequireRunning(_containers.ResolveId(request.ContainerId));
        var url = await IssueAsync(new RemoteCommandSession(StreamingSession.ExecKind, new ExecCommand(_containers, container.Id, [.. request.Cmd], options)), context.CancellationToken);
        return new ExecResponse { Url = url };
    }

    public override async Task<AttachResponse> Attach(AttachRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.ContainerId)) throw InvalidArgument("container_id is required");
        var options = StreamOptions(request.Stdin, request.Stdout, request.Stderr, request.Tty);
        var container = _containers.RequireRunning(_containers.ResolveId(request.ContainerId));
        if (request.Stdin && !container.Stdin)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"stdin: container {request.ContainerId} was not created with stdin open"));
        var url = await IssueAsync(new RemoteCommandSession(StreamingSession.AttachKind, new AttachCommand(_containers, container.Id, options)), context.CancellationToken);
        return new AttachResponse { Url = url };
    }

    public override async Task<PortForwardResponse> PortForward(PortForwardRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        foreach (var port in request.Port)
            if (port is < 1 or > 65535) throw InvalidArgument($"port: {port} is out of range 1-65535");
        var sandbox = FindSandbox(request.PodSandboxId)
                      ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod_sandbox_id: pod sandbox {request.PodSandboxId} not found"));
        if (sandbox.State != Berth.Sandbox.SandboxState.Ready)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"pod_sandbox_id: pod sandbox {sandbox.Id} is not ready"));
        var url = await IssueAsync(new PortForwardSession(new PodPortForward(_sandboxes, sandbox.Id, [.. request.Port])), context.CancellationToken);
        return new PortForwardResponse { Url = url };
    }

    private static RemoteCommandOptions StreamOptions(bool stdin, bool stdout, bool stderr, bool tty)
    {
        if (!stdin && !stdout && !stderr) throw InvalidArgument("one of stdin, stdout or stderr must be set");
        if (tty && stderr) throw InvalidArgument("tty and stderr cannot both be true: a terminal has one output stream");
        return new RemoteCommandOptions(stdin, stdout, stderr, tty);
    }

    private async Task<string> IssueAsync(StreamingSession session, CancellationToken cancellationToken)
    {
        try
        {
            return await _streaming.IssueAsync(session, cancellationToken);
        }
        catch (StreamingCapacityException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message));
        }
    }
}
