namespace Berth.Runtime.Cdi;

/// <summary>
/// Tells the registry when its spec directories change: one inotify instance watching each directory for files
/// written, moved or removed, and, for a directory not there yet (/var/run/cdi before a DRA driver makes it), its
/// nearest existing parent for the directory's creation. The kernel queues an event by the time the writing call
/// returns, so <see cref="TakePending"/>, called before a resolution, sees every change made before it. A thread also
/// waits for changes and, once they have been quiet for 100 ms, has the registry refresh, so a bad spec is logged
/// when it is written, not at the next container.
/// </summary>
internal sealed unsafe class CdiSpecWatch : IDisposable
{
    private const uint InModify = 0x2, InAttrib = 0x4, InCloseWrite = 0x8, InMovedFrom = 0x40, InMovedTo = 0x80, InCreate = 0x100,
        InDelete = 0x200, InDeleteSelf = 0x400, InMoveSelf = 0x800, InOnlyDir = 0x01000000;
    private const uint DirectoryEvents = InModify | InAttrib | InCloseWrite | InMovedFrom | InMovedTo | InCreate | InDelete | InDeleteSelf | InMoveSelf | InOnlyDir;
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(100);

    private readonly IReadOnlyList<string> _directories;
    private readonly Action _refresh;
    private readonly int _fd;
    private readonly Lock _readLock = new();
    private readonly byte[] _buffer = new byte[16 * 1024];
    private volatile bool _disposed;
    private bool _pending;

    public CdiSpecWatch(IReadOnlyList<string> directories, Action refresh)
    {
        _directories = directories;
        _refresh = refresh;
        _fd = Berth.Native.Inotify.Open();
        AddWatches();
        new Thread(Loop) { IsBackground = true, Name = "cdi-specs" }.Start();
    }

    /// <summary>Whether anything changed since the last call: reads what the kernel has queued, without waiting.</summary>
    public bool TakePending()
    {
        lock (_readLock)
        {
            while (ReadEvents() > 0) _pending = true;
            var pending = _pending;
            _pending = false;
            // A directory made or replaced since: watched from now on (adding a watch again is harmless).
            if (pending) AddWatches();
            return pending;
        }
    }

    private void AddWatches()
    {
        foreach (var directory in _directories)
        {
            var watched = directory;
            // The nearest existing parent stands in for a directory that is not there, until it is.
            while (!Directory.Exists(watched) && Path.GetDirectoryName(watched) is { } parent) watched = parent;
            _ = Berth.Native.Inotify.AddWatch(_fd, watched, DirectoryEvents);
        }
    }

    private nint ReadEvents()
    {
        fixed (byte* p = _buffer) return Berth.Native.Inotify.Read(_fd, p, (nuint)_buffer.Length);
    }

    private void Loop()
    {
        while (!_disposed)
        {
            var poll = new Tmds.Linux.pollfd { fd = _fd, events = Tmds.Linux.LibC.POLLIN };
            // A second at most between looks at _disposed, so the instance goes with its watch.
            if (Tmds.Linux.LibC.poll(&poll, 1, 1000) <= 0) continue;
            lock (_readLock)
            {
                if (ReadEvents() > 0) _pending = true;
            }
            // Until the writer is done: a spec written in several steps is read once, whole.
            while (!_disposed && Tmds.Linux.LibC.poll(&poll, 1, (int)Quiet.TotalMilliseconds) > 0)
            {
                lock (_readLock)
                {
                    if (ReadEvents() > 0) _pending = true;
                }
            }
            if (!_disposed) _refresh();
        }
        _ = Tmds.Linux.LibC.close(_fd);
    }

    public void Dispose() => _disposed = true;
}
