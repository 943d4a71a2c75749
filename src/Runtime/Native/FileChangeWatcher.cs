namespace Berth.Native;

/// <summary>
/// Tells when files change, for files that say so through inotify (cgroup v2's <c>memory.events</c> does, on every
/// new count): one inotify instance for all, read by one thread. The node allows only 128 instances per user, so
/// a watcher per container would run out on a busy node; watches are many (max_user_watches).
/// </summary>
internal sealed unsafe class FileChangeWatcher : IDisposable
{
    private const uint InModify = 0x2, InIgnored = 0x8000;
    private readonly int _fd;
    private readonly Lock _lock = new();
    private readonly Dictionary<int, Action> _byWatch = [];
    private readonly Dictionary<string, int> _byKey = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    public FileChangeWatcher()
    {
        _fd = Inotify.Open();
        new Thread(Loop) { IsBackground = true, Name = "file-changes" }.Start();
    }

    /// <summary>Calls <paramref name="changed"/> (on this watcher's thread: keep it short) each time the file changes; false when it cannot be watched.</summary>
    public bool Watch(string key, string path, Action changed)
    {
        var watch = Inotify.AddWatch(_fd, path, InModify);
        if (watch < 0) return false;
        lock (_lock)
        {
            _byWatch[watch] = changed;
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

    private void Loop()
    {
        var buffer = new byte[16 * 1024];
        while (!_disposed)
        {
            // A second at most between looks at _disposed, so the instance goes with its watcher.
            var poll = new Tmds.Linux.pollfd { fd = _fd, events = Tmds.Linux.LibC.POLLIN };
            if (Tmds.Linux.LibC.poll(&poll, 1, 1000) <= 0) continue;
            nint read;
            fixed (byte* p = buffer) read = Inotify.Read(_fd, p, (nuint)buffer.Length);
            if (read <= 0) continue;
            // struct inotify_event: int wd, uint mask, uint cookie, uint len, then len bytes of name.
            for (var offset = 0; offset + 16 <= read;)
            {
                var watch = BitConverter.ToInt32(buffer, offset);
                var mask = BitConverter.ToUInt32(buffer, offset + 4);
                var length = BitConverter.ToInt32(buffer, offset + 12);
                offset += 16 + length;
                Action? changed;
                lock (_lock)
                {
                    if (!_byWatch.TryGetValue(watch, out changed)) continue;
                    // The file is gone (a removed cgroup): the kernel dropped the watch.
                    if ((mask & InIgnored) != 0) _byWatch.Remove(watch);
                }
                if ((mask & InModify) != 0) changed();
            }
        }
        _ = Tmds.Linux.LibC.close(_fd);
    }

    public void Dispose() => _disposed = true;
}
