using Berth.Cgroups;
using Berth.Native;
using Berth.Shim.Native;

namespace Berth.Shim.Container;

/// <summary>
/// Whether the kernel's OOM killer killed a process of the container, as conmon's oom.c sees it: cgroup v2 counts
/// each kill in the container's <c>memory.events</c>, which the shim watches with inotify from create on and reads
/// again when the init exits. The shim does it, not berthd, because under the systemd driver the scope's cgroup and
/// its counts go the moment the container's last process does: the shim's loop wakes on the count's change, while
/// the kill is still in progress. Inactive on cgroup v1, whose memory cgroup lasts until <c>runc delete</c>, where
/// berthd reads it.
/// </summary>
internal sealed class OomWatch
{
    private readonly string? _events;
    private int _killed;

    private OomWatch(string? events, int fd) => (_events, Fd) = (events, fd);

    /// <summary>The inotify descriptor to poll for reading, or -1 when there is nothing to watch.</summary>
    public int Fd { get; }

    /// <summary>An OOM kill was counted in the container's cgroup while it ran.</summary>
    public bool Killed => Volatile.Read(ref _killed) != 0;

    /// <summary>Watches the container's cgroup v2 directory (<see cref="ContainerCgroup"/>); inactive without one.</summary>
    public static OomWatch Start(string? cgroupDirectory)
    {
        if (cgroupDirectory is null) return new OomWatch(null, -1);
        var events = Path.Combine(cgroupDirectory, MemoryEvents.V2File);
        var fd = Libc.InotifyInit1(Libc.InNonBlock | Libc.InCloExec);
        if (fd >= 0 && Libc.InotifyAddWatch(fd, events, Libc.InModify) < 0)
        {
            _ = Descriptors.Close(fd);
            fd = -1;
        }
        var watch = new OomWatch(events, fd);
        watch.Look();
        return watch;
    }

    /// <summary>The inotify descriptor is readable: its events are drained and the counts read.</summary>
    public void OnReadable(Span<byte> buffer)
    {
        while (Native.Fd.Read(Fd, buffer) > 0)
        {
        }
        Look();
    }

    /// <summary>Reads the counts now; once an OOM kill was seen it stays seen. Safe from any thread.</summary>
    public void Look()
    {
        if (_events is null || Killed) return;
        try
        {
            if (MemoryEvents.Parse(Native.Fd.ReadFile(_events)).OomKill > 0) Volatile.Write(ref _killed, 1);
        }
        catch (IOException)
        {
            // The cgroup is gone (the scope went with the container's last process): what was seen stands.
        }
    }
}
