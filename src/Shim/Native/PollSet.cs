namespace Berth.Shim.Native;

/// <summary>
/// The descriptors of one poll(2) round, in the order they were added; results are read back by that position.
/// The array is kept between rounds and grows as needed.
/// </summary>
internal sealed unsafe class PollSet(int capacity)
{
    private Libc.PollFd[] _fds = new Libc.PollFd[capacity];
    private int _count;

    public void Clear() => _count = 0;

    public void Add(int fd, short events)
    {
        if (_count == _fds.Length) Array.Resize(ref _fds, _fds.Length * 2);
        _fds[_count++] = new Libc.PollFd { Fd = fd, Events = events };
    }

    /// <summary>Polls every descriptor added since <see cref="Clear"/>; the number ready, 0 on timeout, negative on error.</summary>
    public int Wait(int timeoutMs)
    {
        fixed (Libc.PollFd* start = _fds) return Libc.Poll(start, (nuint)_count, timeoutMs);
    }

    /// <summary>What poll returned for the descriptor added <paramref name="position"/>-th.</summary>
    public short Returned(int position) => _fds[position].REvents;
}
