using Berth.Native;

namespace Berth.Runtime.Cdi;

/// <summary>
/// Tells the registry when its spec directories change, through the runtime's one inotify instance: each directory
/// is watched for files written, moved or removed, and a directory not there yet (/var/run/cdi before a DRA driver
/// makes it) through its nearest existing parent. The kernel queues an event by the time the writing call returns,
/// so <see cref="TakePending"/>, called before a resolution, sees every change made before it. Changes also have the
/// registry refresh once they have been quiet for 100 ms, so a bad spec is logged when it is written, not at the next
/// container.
/// </summary>
internal sealed class CdiSpecWatch : IDisposable
{
    private const uint InModify = 0x2, InAttrib = 0x4, InCloseWrite = 0x8, InMovedFrom = 0x40, InMovedTo = 0x80, InCreate = 0x100,
        InDelete = 0x200, InDeleteSelf = 0x400, InMoveSelf = 0x800, InOnlyDir = 0x01000000;
    private const uint DirectoryEvents = InModify | InAttrib | InCloseWrite | InMovedFrom | InMovedTo | InCreate | InDelete | InDeleteSelf | InMoveSelf | InOnlyDir;
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(100);

    private readonly IReadOnlyList<string> _directories;
    private readonly FileChangeWatcher _watcher;
    private readonly Timer _refresh;
    private int _pending;

    public CdiSpecWatch(IReadOnlyList<string> directories, FileChangeWatcher watcher, Action refresh)
    {
        _directories = directories;
        _watcher = watcher;
        _refresh = new Timer(_ => refresh());
        AddWatches();
    }

    /// <summary>Whether anything changed since the last call, counting what the kernel has queued until now.</summary>
    public bool TakePending()
    {
        _watcher.Flush();
        if (Interlocked.Exchange(ref _pending, 0) == 0) return false;
        // A directory made or replaced since: watched from now on (adding a watch again is harmless).
        AddWatches();
        return true;
    }

    private void AddWatches()
    {
        foreach (var directory in _directories)
        {
            var watched = directory;
            // The nearest existing parent stands in for a directory that is not there, until it is.
            while (!Directory.Exists(watched) && Path.GetDirectoryName(watched) is { } parent) watched = parent;
            _watcher.Watch("cdi:" + directory, watched, Changed, DirectoryEvents);
        }
    }

    private void Changed()
    {
        Volatile.Write(ref _pending, 1);
        // Until the writer is done: a spec written in several steps is read once, whole.
        _refresh.Change(Quiet, Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        _refresh.Dispose();
        foreach (var directory in _directories) _watcher.Unwatch("cdi:" + directory);
    }
}
