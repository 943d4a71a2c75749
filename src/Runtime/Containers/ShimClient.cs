using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Berth.Native;
using Berth.ShimProtocol;

namespace Berth.Runtime.Containers;

/// <summary>berthd's side of berth-shim: starting one per container and its control socket.</summary>
internal static class ShimClient
{
    /// <summary>
    /// Starts the shim, which runs <c>runc create</c>, and waits for its one-line <see cref="ShimReport"/>. The shim
    /// detaches itself; berthd keeps no handle on it.
    /// </summary>
    public static async Task<CreatedContainer> StartAsync(string shimBinary, ShimCommandLine commandLine, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(shimBinary)
        {
            UseShellExecute = false,
            // berthd's own stdio (a terminal, a journal) must not reach a process that outlives it: the shim
            // reports on stdout, and the pipes' other ends close when this Process is disposed.
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var argument in commandLine.ToArguments()) start.ArgumentList.Add(argument);

        using var process = Process.Start(start) ?? throw new ContainerRuntimeException($"{shimBinary} did not start");
        var shim = new ShimProcess(process.Id, ProcFs.StartTimeOf(process.Id) ?? 0);
        string? line;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(TimeSpan.FromMinutes(2));
            try
            {
                line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                ProcFs.Kill(process.Id);
                throw new ContainerRuntimeException("the shim did not report within 2 minutes");
            }
        }
        if (ShimReport.TryParse(line, out var initPid, out var createMicros, out var error))
        {
            TraceRuntimeCreate(TimeSpan.FromMicroseconds(createMicros));
            return new CreatedContainer(shim, initPid);
        }
        throw new ContainerRuntimeException(error ?? $"the shim exited without creating the container (see {Path.Combine(commandLine.Bundle, ShimFiles.ShimLog)})");
    }

    /// <summary>The runtime's create, timed by the shim, as a span that ended when its report came.</summary>
    private static void TraceRuntimeCreate(TimeSpan took)
    {
        if (!Tracing.Source.HasListeners()) return;
        var end = DateTimeOffset.UtcNow;
        using var span = Tracing.Source.StartActivity("runtime.create", ActivityKind.Internal, parentContext: default, startTime: end - took);
        span?.SetEndTime(end.UtcDateTime);
    }

    /// <summary>One request on the shim's control socket.</summary>
    public static async Task RequestAsync(string bundle, ShimControlRequest request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(Path.Combine(bundle, ShimFiles.ControlSocket)), cancellationToken);
        }
        catch (SocketException e)
        {
            throw new ContainerStateException($"the container's shim is not serving ({e.SocketErrorCode}); is the container running?");
        }
        await socket.SendAsync(Encoding.UTF8.GetBytes(request.Format()), cancellationToken);
        var buffer = new byte[512];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken)) > 0) length += read;
        if (ShimControlRequest.ReplyError(Encoding.UTF8.GetString(buffer, 0, length)) is { } error)
            throw new ContainerRuntimeException($"the shim refused '{request.Format().TrimEnd()}': {error}");
    }
}
