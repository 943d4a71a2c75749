using System.Runtime.InteropServices;
using static Tmds.Linux.LibC;

namespace Berth.Native;

/// <summary>
/// Tells when processes that are not berthd's children exit, without polling: one pidfd per process (pidfd_open,
/// Linux 5.3), all waited on by one thread with poll(2). A pidfd turns readable when its process exits.
/// </summary>
internal sealed unsafe partial class ProcessExitWatcher : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, Action> _watched = [];
    private readonly int _wakeRead;
    private readonly int _wakeWrite;
    private bool _disposed;

    public ProcessExitWatcher()
    {
        var pipe = stackalloc int[2];
        if (pipe2(pipe, O_CLOEXEC) != 0) throw new IOException($"pipe2: errno {Marshal.GetLastPInvokeError()}");
        (_wakeRead, _wakeWrite) = (pipe[0], pipe[1]);
        new Thread(Loop) { IsBackground = true, Name = "process-exits" }.Start();
    }

    /// <summary>
    /// Calls <paramref name="exited"/> once, on the thread pool, when the process that has this PID and start time
    /// exits; at once when it is gone already (or the PID is another process's now).
    /// </summary>
    public void Watch(int pid, ulong startTime, Action exited)
    {
        var fd = PidfdOpen(pid, 0);
        // Opened first, checked second: had the PID been reused before the open, the start time would differ.
        if (fd < 0 || ProcFs.StartTimeOf(pid) != startTime)
        {
            if (fd >= 0) _ = close(fd);
            ThreadPool.QueueUserWorkItem(_ => exited());
            return;
        }
        lock (_lock)
        {
            if (_disposed)
            {
                _ = close(fd);
                return;
            }
            _watched[fd] = exited;
        }
        Wake();
    }

    private void Loop()
    {
        var fds = new List<int>();
        var buffer = stackalloc byte[64];
        while (true)
        {
            lock (_lock)
            {
                if (_disposed) break;
                fds.Clear();
                fds.AddRange(_watched.Keys);
            }
            var poll = new Tmds.Linux.pollfd[fds.Count + 1];
            poll[0] = new Tmds.Linux.pollfd { fd = _wakeRead, events = POLLIN };
            for (var i = 0; i < fds.Count; i++) poll[i + 1] = new Tmds.Linux.pollfd { fd = fds[i], events = POLLIN };
            int ready;
            fixed (Tmds.Linux.pollfd* p = poll) ready = Tmds.Linux.LibC.poll(p, (Tmds.Linux.ulong_t)(ulong)poll.Length, -1);
            if (ready <= 0) continue;
            if (poll[0].revents != 0) _ = read(_wakeRead, buffer, 64);
            for (var i = 1; i < poll.Length; i++)
            {
                if (poll[i].revents == 0) continue;
                Action? exited;
                lock (_lock)
                {
                    if (!_watched.Remove(poll[i].fd, out exited)) continue;
                }
                _ = close(poll[i].fd);
                ThreadPool.QueueUserWorkItem(_ => exited());
            }
        }
    }

    private void Wake()
    {
        byte one = 1;
        _ = write(_wakeWrite, &one, 1);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var fd in _watched.Keys) _ = close(fd);
            _watched.Clear();
        }
        Wake();
    }

    private static int PidfdOpen(int pid, uint flags) => (int)Syscall(434 /* SYS_pidfd_open, the same on x86-64 and arm64 */, pid, flags);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, int pid, uint flags);
}
