using System.Net.Sockets;

namespace Berth.Nri.Tests;

/// <summary>Two connected unix stream sockets, as a runtime and a plugin have.</summary>
internal static class SocketPair
{
    public static (NetworkStream A, NetworkStream B) Create()
    {
        var path = Path.Combine(Path.GetTempPath(), $"nri-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var a = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        a.Connect(new UnixDomainSocketEndPoint(path));
        var b = listener.Accept();
        File.Delete(path);
        return (new NetworkStream(a, ownsSocket: true), new NetworkStream(b, ownsSocket: true));
    }
}
