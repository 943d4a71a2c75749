namespace Berth.Native;

/// <summary>
/// Tells when files and directories change, through inotify (cgroup v2's <c>memory.events</c> says so on every new
/// count; CDI spec directories on every file written, moved or removed): one inotify instance for all, read by one
/// thread. The node allows only 128 instances per user, so a watcher per container would run out on a busy node;
/// watches are many (max_user_watches).
/// </summary>
internal sealed unsafe class FileChangeWatcher : IDisposable
{
    public const uint Modified = 0x2;
    private const uint InIgnored = 0x8000;
    private readonly int _fd;
    private readonly Lock _lock = new();
    private readonly Lock _readLock = new();
    private readonly byte[] _buffer = new byte[16 * 1024];
    private readonly Dictionary<int, (uint Mask, Action Changed)> _byWatch = [];
    private readonly Dictionary<string, int> _byKey = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    public FileChangeWatcher()
    {
        _fd = Inotify.Open();
        new Thread(Loop) { IsBackground = true, Name = "file-changes" }.Start();
    }

    /// <summary>
    /// Calls <paramref name="changed"/> (on this watcher's thread, or <see cref="Flush"/>'s caller: keep it short) for
    /// each event of <paramref name="mask"/> on the path (a file's modification by default); false when it cannot be watched.
    /// </summary>
    public bool Watch(string key, string path, Action changed, uint mask = Modified)
    {
        var watch = Inotify.AddWatch(_fd, path, mask);
        if (watch < 0) return false;
        lock (_lock)
        {
            _byWatch[watch] = (mask, changed);
            // A key watched elsewhere before (a parent standing in for a directory that is there now) lets go of it.
            if (_byKey.TryGetValue(key, out var before) && before != watch && !_byKey.Any(k => k.Key != key && k.Value == before))
            {
                _byWatch.Remove(before);
                _ = Inotify.RmWatch(_fd, before);
            }
            _byKey[key] = watch;
        }
        return true;
    }

    public void Unwatch(string key)
    {
        lock (_lock)
        {
            if (!_byKey.Remove(key, out var watch)) return;
            _byWatch.Remove(watch);
            _ = Inotify.RmWatch(_fd, watch);
        }
    }

    /// <summary>
    /// Takes in, on the caller's thread, every event the kernel has queued: it queues them by the time the call that
    /// made the change returns, so after this every change made before it has been told.
    /// </summary>
    public void Flush()
    {
        lock (_readLock)
        {
            while (ReadAndTell())
            {
            }
        }
    }

    private void Loop()
    {
        while (!_disposed)
        {
            // A second at most between looks at _disposed, so the instance goes with its watcher.
            var poll = new Tmds.Linux.pollfd { fd = _fd, events = Tmds.Linux.LibC.POLLIN };
            if (Tmds.Linux.LibC.poll(&poll, 1, 1000) <= 0) continue;
            lock (_readLock) ReadAndTell();
        }
        _ = Tmds.Linux.LibC.close(_fd);
    }

    /// <summary>One read of the (non-blocking) instance and the calls it makes; false when nothing was queued.</summary>
    private bool ReadAndTell()
    {
        nint read;
        fixed (byte* p = _buffer) read = Inotify.Read(_fd, p, (nuint)_buffer.Length);
        if (read <= 0) return false;
        // struct inotify_event: int wd, uint mask, uint cookie, uint len, then len bytes of name.
        for (var offset = 0; offset + 16 <= read;)
        {
            var watch = BitConverter.ToInt32(_buffer, offset);
            var mask = BitConverter.ToUInt32(_buffer, offset + 4);
            var length = BitConverter.ToInt32(_buffer, offset + 12);
            offset += 16 + length;
            (uint Mask, Action Changed) watched;
            lock (_lock)
            {
                if (!_byWatch.TryGetValue(watch, out watched)) continue;
                // The file is gone (a removed cgroup, a removed directory): the kernel dropped the watch.
                if ((mask & InIgnored) != 0) _byWatch.Remove(watch);
            }
            if ((mask & watched.Mask) != 0) watched.Changed();
        }
        return true;
    }

    public void Dispose() => _disposed = true;
}
