using Berth.Native;
using Berth.Shim.Native;

namespace Berth.Shim.Container;

/// <summary>
/// As the container's subreaper the shim inherits its init once <c>runc create</c> exits, and every orphan the
/// container leaves. One thread reaps them all with a blocking <c>waitpid(-1)</c> and keeps the statuses that
/// someone waits for. No SIGCHLD handler: .NET's signal handling brings a dispatch thread and the thread pool,
/// which would be most of a shim's memory.
/// </summary>
internal sealed class Reaper
{
    private readonly object _lock = new();
    private readonly Dictionary<int, int> _exited = [];
    private (int Pid, Action<int> OnExit)? _watch;

    // Bumped by each spawn: with no child (ECHILD) the thread sleeps until this moves.
    private int _spawns;

    public Reaper() => new Thread(Loop) { IsBackground = true, Name = "reaper" }.Start();

    /// <summary>Starts a child whose exit this reaper collects.</summary>
    public int Spawn(string program, IReadOnlyList<string> args, int stdin, int stdout, int stderr)
    {
        var pid = Fd.Spawn(program, args, stdin, stdout, stderr);
        lock (_lock)
        {
            _spawns++;
            Monitor.PulseAll(_lock);
        }
        return pid;
    }

    /// <summary>
    /// Forks a child that runs <paramref name="child"/> with <paramref name="argument"/>; it must end in _exit and make
    /// only plain syscalls (no other thread exists there). Its exit is reaped like any other.
    /// </summary>
    public unsafe int Fork(delegate*<int, void> child, int argument)
    {
        var pid = Libc.Fork();
        if (pid == 0)
        {
            child(argument);
            Libc.Exit(127);
        }
        if (pid < 0) throw Fd.Failure("fork");
        lock (_lock)
        {
            _spawns++;
            Monitor.PulseAll(_lock);
        }
        return pid;
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
            int seen;
            lock (_lock) seen = _spawns;
            var pid = Libc.WaitPid(-1, out var status, 0);
            if (pid < 0)
            {
                if (Descriptors.LastError == Libc.EIntr) continue;
                // ECHILD: no descendants at all (orphans reach a subreaper only through a child), so none can
                // appear before the next spawn.
                lock (_lock)
                {
                    while (_spawns == seen) Monitor.Wait(_lock);
                }
                continue;
            }
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
