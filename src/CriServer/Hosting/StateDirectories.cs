using Berth.CriServer.Configuration;

namespace Berth.CriServer.Hosting;

/// <summary>Creates berthd's directories at startup and proves each is writable, naming the one that is not.</summary>
internal static class StateDirectories
{
    public static void Prepare(BerthConfig config)
    {
        Ensure("root", config.Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Ensure("state", config.State, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var socketDir = Path.GetDirectoryName(config.Grpc.Socket)!;
        // Group members need to traverse the socket's directory to reach a 0660 socket.
        Ensure("grpc.socket", socketDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                                          | UnixFileMode.GroupExecute | UnixFileMode.GroupRead);
    }

    private static void Ensure(string key, string path, UnixFileMode mode)
    {
        try
        {
            if (!Directory.Exists(path))
                Directory.CreateDirectory(path, mode);
            var probe = Path.Combine(path, $".berth-write-check-{Environment.ProcessId}");
            using (File.Create(probe, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new ConfigException($"{key}: directory '{path}' is not writable: {e.Message}");
        }
    }
}
