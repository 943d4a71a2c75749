using System.Net.Sockets;
using System.Text;
using Berth.CriServer.Configuration;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Berth.CriServer.Hosting;

/// <summary>Makes sure berthd can take a socket path (the CRI's, NRI's): a live listener is an error, a stale socket from a crash is removed.</summary>
internal static class SocketGuard
{
    private const uint FileTypeMask = 0xF000; // S_IFMT
    private const uint SocketType = 0xC000;   // S_IFSOCK

    public static void Claim(string path, string key = "grpc.socket")
    {
        var fileType = LstatFileType(path);
        if (fileType is null) return;
        // Never delete something that is not a socket: a typo in grpc.socket must not eat a file.
        if (fileType != SocketType)
            throw new ConfigException($"{key}: '{path}' exists and is not a socket");

        using var probe = new Socket(AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            File.Delete(path); // Nobody listens: left behind by a berthd that died.
            return;
        }
        throw new ConfigException(key == "grpc.socket"
            ? $"{key}: another process is already serving on '{path}' (is berthd running?)"
            : $"{key}: another process is already serving on '{path}' (another berthd, or containerd's or CRI-O's NRI?)");
    }

    /// <summary>Restricts the socket to its owner and group (0660), handing it to the configured group.</summary>
    public static unsafe void Secure(string path, int gid)
    {
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        if (gid == 0) return;
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            if (chown(p, 0, (uint)gid) != 0)
                throw new IOException($"grpc.gid: cannot give '{path}' to group {gid}: errno {errno}");
        }
    }

    private static unsafe uint? LstatFileType(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        stat st;
        fixed (byte* p = bytes)
        {
            if (lstat(p, &st) != 0) return null;
        }
        return (uint)st.st_mode & FileTypeMask;
    }
}
