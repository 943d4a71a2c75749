using System.Net;
using System.Net.Sockets;

namespace Berth.Sandbox;

public sealed partial class SandboxManager
{
    /// <summary>
    /// Connects to a port on the pod's loopback. The socket is made inside the pod's network namespace, on a thread
    /// of its own that then ends; a socket keeps its namespace for life, so the connection stays in the pod.
    /// </summary>
    public async Task<Socket> ConnectAsync(string id, int port, CancellationToken cancellationToken)
    {
        if (port is < 1 or > 65535) throw new SandboxRequestException($"port {port} is out of range 1-65535");
        var record = Get(id) ?? throw new SandboxNotFoundException($"pod sandbox {id} not found");
        if (record.State != SandboxState.Ready) throw new SandboxStateException($"pod sandbox {id} is not ready");
        var endpoint = new IPEndPoint(IPAddress.Loopback, port);
        if (record.HostNetwork || !record.NamespacePaths.TryGetValue("network", out var netns))
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(endpoint, cancellationToken);
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        var inPod = await Task.Run(() => InNetworkNamespace(netns, "berth-portforward",
            () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }), cancellationToken);
        try
        {
            // No timeout of our own: like a plain connect, it gives up when the kernel's SYN retries run out.
            await inPod.ConnectAsync(endpoint, cancellationToken);
            return inPod;
        }
        catch
        {
            inPod.Dispose();
            throw;
        }
    }
}
