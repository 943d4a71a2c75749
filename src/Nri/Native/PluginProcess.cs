using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Berth.Nri.Native;

/// <summary>
/// A pre-registered plugin's process, started as NRI's stub expects: its end of a socket pair as fd 3
/// (<c>NRI_PLUGIN_SOCKET=3</c>), its name and index in <c>NRI_PLUGIN_NAME</c> and <c>NRI_PLUGIN_IDX</c>, and no other
/// environment. Killed and reaped when the plugin is let go.
/// </summary>
internal sealed unsafe partial class PluginProcess : IDisposable
{
    private const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000, O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000;
    private const int SIGKILL = 9, EINTR = 4;
    private int _pid;

    private PluginProcess(int pid) => _pid = pid;

    public int Pid => _pid;

    /// <summary>Starts <paramref name="path"/>; returns it and berthd's end of its connection.</summary>
    public static (PluginProcess Process, Socket Connection) Start(string path, string index, string name, string? logFile)
    {
        var pair = stackalloc int[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) throw Error("socketpair");
        var (local, peer) = (pair[0], pair[1]);
        var log = logFile is null ? open("/dev/null", O_WRONLY | O_CLOEXEC, 0) : open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0x180);
        var devNull = open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
        try
        {
            if (log < 0 || devNull < 0) throw Error($"open {logFile ?? "/dev/null"}");
            var actions = stackalloc byte[128];
            _ = posix_spawn_file_actions_init(actions);
            try
            {
                // dup2 clears close-on-exec on the copy, so these and nothing else reach the plugin.
                _ = posix_spawn_file_actions_adddup2(actions, devNull, 0);
                _ = posix_spawn_file_actions_adddup2(actions, log, 1);
                _ = posix_spawn_file_actions_adddup2(actions, log, 2);
                _ = posix_spawn_file_actions_adddup2(actions, peer, 3);
                string[] argv = [path];
                string[] envp = [$"NRI_PLUGIN_NAME={name}", $"NRI_PLUGIN_IDX={index}", "NRI_PLUGIN_SOCKET=3"];
                var pid = Spawn(path, argv, envp, actions);
                return (new PluginProcess(pid), new Socket(new SafeSocketHandle(local, ownsHandle: true)));
            }
            finally
            {
                _ = posix_spawn_file_actions_destroy(actions);
            }
        }
        catch
        {
            _ = close(local);
            throw;
        }
        finally
        {
            _ = close(peer);
            if (log >= 0) _ = close(log);
            if (devNull >= 0) _ = close(devNull);
        }
    }

    private static int Spawn(string path, string[] argv, string[] envp, byte* actions)
    {
        var strings = new List<nint>();
        var blocks = new List<nint>();
        try
        {
            byte** Block(string[] items)
            {
                var block = (byte**)NativeMemory.AllocZeroed((nuint)(items.Length + 1), (nuint)sizeof(nint));
                blocks.Add((nint)block);
                for (var i = 0; i < items.Length; i++)
                {
                    block[i] = (byte*)Marshal.StringToCoTaskMemUTF8(items[i]);
                    strings.Add((nint)block[i]);
                }
                return block;
            }
            var file = (byte*)Marshal.StringToCoTaskMemUTF8(path);
            strings.Add((nint)file);
            var error = posix_spawn(out var pid, file, actions, null, Block(argv), Block(envp));
            return error == 0 ? pid : throw new IOException($"starting NRI plugin {path}: {Marshal.GetPInvokeErrorMessage(error)}");
        }
        finally
        {
            foreach (var p in strings) Marshal.FreeCoTaskMem(p);
            foreach (var p in blocks) NativeMemory.Free((void*)p);
        }
    }

    /// <summary>Kills the plugin and reaps it; nothing if it is gone already.</summary>
    public void Dispose()
    {
        var pid = Interlocked.Exchange(ref _pid, 0);
        if (pid <= 0) return;
        _ = kill(pid, SIGKILL);
        while (waitpid(pid, out _, 0) < 0 && Marshal.GetLastPInvokeError() == EINTR)
        {
        }
    }

    private static IOException Error(string what) => new($"{what}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socketpair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, out int status, int options);

    [LibraryImport("libc")]
    private static partial int posix_spawn(out int pid, byte* path, byte* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(byte* actions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_adddup2(byte* actions, int fd, int newFd);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(byte* actions);
}
