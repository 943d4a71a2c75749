using Berth.Native;

namespace Berth.Shim.Container;

/// <summary>
/// The container's stdin, non-blocking: while it holds bytes the container has not taken, attach clients are not
/// read (they wait, as a full pipe would make them), and the loop goes on serving output. With a terminal the
/// stdin is the pty master, which is never closed here: it is the container's output too.
/// </summary>
internal sealed class ContainerStdin
{
    private readonly bool _isConsole;
    private WriteBacklog? _backlog;
    private bool _closing;

    public ContainerStdin(int fd, bool isConsole)
    {
        Fd = fd;
        _isConsole = isConsole;
        Native.Fd.SetNonBlocking(fd);
        _backlog = new WriteBacklog(fd, 64 * 1024, socket: false);
    }

    /// <summary>-1 once closed.</summary>
    public int Fd { get; private set; }

    /// <summary>An attach client has written to it: with stdin_once, that client's end closes it.</summary>
    public bool Claimed { get; private set; }

    /// <summary>Bytes the container has not taken yet; the loop polls <see cref="Fd"/> for writability then.</summary>
    public bool IsBehind => _backlog is { IsEmpty: false };

    public void Write(ReadOnlySpan<byte> data)
    {
        if (_backlog is null || _closing) return;
        Claimed = true;
        if (_backlog.Write(data, [])) return;
        // The container closed its stdin (or, never, fell 64 KiB behind one read): nothing more goes in.
        _closing = true;
        Close();
    }

    /// <summary>The descriptor can take more: what waits goes in, and a pending close happens.</summary>
    public void OnWritable()
    {
        if (_backlog is null) return;
        if (!_backlog.Flush()) _closing = true;
        if (_closing) Close();
    }

    /// <summary>Closes the container's stdin once what it was sent is in the pipe (at once when the pipe is gone).</summary>
    public void Close()
    {
        if (_backlog is null || _isConsole) return;
        _closing = true;
        if (!_backlog.IsEmpty && _backlog.Flush() && !_backlog.IsEmpty) return;
        _ = Descriptors.Close(Fd);
        Fd = -1;
        _backlog = null;
    }
}
