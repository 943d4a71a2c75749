using Berth.CriServer.Configuration;

namespace Berth.CriServer.Hosting;

/// <summary>Creates berthd's directories at startup and proves each is writable, naming the one that is not.</summary>
internal static class StateDirectories
{
    public static void Prepare(BerthConfig config)
    {
        Ensure("root", config.Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // Others may search it (0711, as containerd's): the root of a pod user namespace, an ID of nobody's on the node,
        // must reach its container's bundle. Nothing in it can be listed, and what it holds is the owner's alone.
        Ensure("state", config.State, StateMode);
        File.SetUnixFileMode(config.State, StateMode);
        var socketDir = Path.GetDirectoryName(config.Grpc.Socket)!;
        // Group members need to traverse the socket's directory to reach a 0660 socket.
        Ensure("grpc.socket", socketDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                                          | UnixFileMode.GroupExecute | UnixFileMode.GroupRead);
    }

    public const UnixFileMode StateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                                          | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>The first directory on the way to <paramref name="path"/> that other users cannot search, or null when all can.</summary>
    public static string? Unsearchable(string path)
    {
        for (var directory = Path.GetFullPath(path); directory is not null; directory = Path.GetDirectoryName(directory))
        {
            if (Directory.Exists(directory) && !File.GetUnixFileMode(directory).HasFlag(UnixFileMode.OtherExecute)) return directory;
        }
        return null;
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
