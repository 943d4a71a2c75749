using System.Runtime.InteropServices;
using Berth.Shim.Native;

namespace Berth.Shim.Container;

/// <summary>
/// As the container's subreaper the shim inherits its init once <c>runc create</c> exits, and every orphan the
/// container leaves. One thread reaps them all on SIGCHLD and keeps the statuses that someone waits for.
/// </summary>
internal sealed class Reaper : IDisposable
{
    private readonly object _lock = new();
    private readonly Dictionary<int, int> _exited = [];
    private readonly SemaphoreSlim _childSignal = new(0);
    private readonly PosixSignalRegistration _registration;
    private readonly Thread _thread;
    private (int Pid, Action<int> OnExit)? _watch;

    public Reaper()
    {
        _registration = PosixSignalRegistration.Create(PosixSignal.SIGCHLD, _ => _childSignal.Release());
        _thread = new Thread(Loop) { IsBackground = true, Name = "reaper" };
        _thread.Start();
    }

    /// <summary>Blocks until the child exits; returns its exit code (128 + signal when killed).</summary>
    public int WaitFor(int pid)
    {
        lock (_lock)
        {
            while (true)
            {
                if (_exited.Remove(pid, out var status)) return Libc.ExitCodeOf(status);
                Monitor.Wait(_lock);
            }
        }
    }

    /// <summary>Calls back (on the reaper's thread) with the exit code when the child exits, at once if it has.</summary>
    public void Watch(int pid, Action<int> onExit)
    {
        lock (_lock)
        {
            if (_exited.Remove(pid, out var status))
            {
                onExit(Libc.ExitCodeOf(status));
                return;
            }
            _watch = (pid, onExit);
        }
    }

    private void Loop()
    {
        while (true)
        {
            // The timeout covers a SIGCHLD that arrived before the handler was in place.
            _childSignal.Wait(TimeSpan.FromSeconds(1));
            while (true)
            {
                var pid = Libc.WaitPid(-1, out var status, Libc.WNoHang);
                if (pid <= 0) break;
                lock (_lock)
                {
                    if (_watch is { } watch && watch.Pid == pid)
                    {
                        _watch = null;
                        watch.OnExit(Libc.ExitCodeOf(status));
                        continue;
                    }
                    // A status may come before WaitFor or Watch asks; orphans nobody asks for are few (the
                    // container's init reaps its own) and cost a dictionary entry each.
                    _exited[pid] = status;
                    Monitor.PulseAll(_lock);
                }
            }
        }
    }

    public void Dispose() => _registration.Dispose();
}
