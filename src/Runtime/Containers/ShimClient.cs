using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Berth.Runtime.Containers;

/// <summary>berthd's side of berth-shim: starting one per container, finding it again, and its control socket.</summary>
internal static class ShimClient
{
    public const string ControlSocket = "control.sock";
    public const string AttachSocket = "attach.sock";

    /// <summary>
    /// Starts the shim, which runs <c>runc create</c>, and waits for its one-line report: <c>created PID</c>, or
    /// <c>error MESSAGE</c> (the shim has exited then). The shim detaches itself; berthd keeps no handle on it.
    /// </summary>
    public static async Task<(ShimProcess Shim, int InitPid)> StartAsync(
        string shimBinary, OciRuntime runtime, ContainerRecord record, string exitFile, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(shimBinary)
        {
            ArgumentList =
            {
                "run", "--id", record.Id, "--bundle", record.Bundle, "--runtime", runtime.Binary,
                "--runtime-root", runtime.Root, "--exit-file", exitFile,
            },
            UseShellExecute = false,
            // berthd's own stdio (a terminal, a journal) must not reach a process that outlives it: the shim
            // reports on stdout, and the pipes' other ends close when this Process is disposed.
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        if (record.LogPath is { } log)
        {
            start.ArgumentList.Add("--log");
            start.ArgumentList.Add(log);
        }
        if (record.Tty) start.ArgumentList.Add("--tty");
        if (record.Stdin) start.ArgumentList.Add("--stdin");
        if (record.StdinOnce) start.ArgumentList.Add("--stdin-once");

        using var process = Process.Start(start) ?? throw new ContainerRuntimeException($"{shimBinary} did not start");
        var shim = new ShimProcess(process.Id, ProcessStat.StartTimeOf(process.Id) ?? 0);
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
                ProcessStat.Kill(process.Id);
                throw new ContainerRuntimeException("the shim did not report within 2 minutes");
            }
        }
        if (line is not null && line.StartsWith("created ", StringComparison.Ordinal)
                             && int.TryParse(line.AsSpan(8), NumberStyles.None, CultureInfo.InvariantCulture, out var initPid))
            return (shim, initPid);
        throw new ContainerRuntimeException(line is not null && line.StartsWith("error ", StringComparison.Ordinal)
            ? line[6..]
            : $"the shim exited without creating the container (see {Path.Combine(record.Bundle, "shim.log")})");
    }

    /// <summary>Shims of a container, found by their command line, so one started just before a crash is found too.</summary>
    public static List<int> Find(string shimBinary, string id)
    {
        var wanted = Encoding.UTF8.GetBytes($"{shimBinary}\0run\0--id\0{id}\0");
        var found = new List<int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid)) continue;
            try
            {
                if (File.ReadAllBytes(Path.Combine(directory, "cmdline")).AsSpan().StartsWith(wanted)) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // It exited while we looked.
            }
        }
        return found;
    }

    /// <summary>One request on the shim's control socket: <c>reopen</c> or <c>resize COLUMNS ROWS</c>.</summary>
    public static async Task RequestAsync(string bundle, string request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(Path.Combine(bundle, ControlSocket)), cancellationToken);
        }
        catch (SocketException e)
        {
            throw new ContainerStateException($"the container's shim is not serving ({e.SocketErrorCode}); is the container running?");
        }
        await socket.SendAsync(Encoding.UTF8.GetBytes(request + "\n"), cancellationToken);
        var buffer = new byte[512];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken)) > 0) length += read;
        var reply = Encoding.UTF8.GetString(buffer, 0, length).Trim();
        if (reply != "ok") throw new ContainerRuntimeException($"the shim refused '{request}': {reply}");
    }
}
