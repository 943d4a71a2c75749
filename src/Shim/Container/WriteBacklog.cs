using Berth.Native;
using Berth.Shim.Native;

namespace Berth.Shim.Container;

/// <summary>
/// Writes to a non-blocking descriptor (an attach client's socket, the container's stdin): what it cannot take
/// at once waits here, up to a limit, so the shim's single loop never blocks on a peer that stopped reading.
/// </summary>
internal sealed unsafe class WriteBacklog(int fd, int limit, bool socket)
{
    private byte[]? _buffer;
    private int _start;
    private int _length;

    public bool IsEmpty => _length == 0;

    /// <summary>Set when a write was refused because the backlog would have passed its limit.</summary>
    public bool Overflowed { get; private set; }

    /// <summary>Writes <paramref name="first"/> then <paramref name="second"/>, keeping what the descriptor does not take; false when the peer is gone or too far behind.</summary>
    public bool Write(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        if (_length > 0) return Keep(first, second);
        var written = TryWrite(first);
        if (written < 0) return false;
        if (written < first.Length) return Keep(first[written..], second);
        written = TryWrite(second);
        if (written < 0) return false;
        return Keep([], second[written..]);
    }

    /// <summary>Writes what is kept, as far as the descriptor takes it; false when the peer is gone.</summary>
    public bool Flush()
    {
        while (_length > 0)
        {
            var written = TryWrite(_buffer.AsSpan(_start, _length));
            if (written < 0) return false;
            if (written == 0) return true;
            _start += written;
            _length -= written;
        }
        _start = 0;
        return true;
    }

    private bool Keep(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        var needed = _length + first.Length + second.Length;
        if (needed == _length) return true;
        if (needed > limit)
        {
            Overflowed = true;
            return false;
        }
        if (_buffer is null || needed > _buffer.Length)
        {
            var grown = new byte[Math.Min(limit, Math.Max(needed, (_buffer?.Length ?? 16 * 1024) * 2))];
            _buffer?.AsSpan(_start, _length).CopyTo(grown);
            _buffer = grown;
            _start = 0;
        }
        else if (_start + needed > _buffer.Length)
        {
            _buffer.AsSpan(_start, _length).CopyTo(_buffer);
            _start = 0;
        }
        first.CopyTo(_buffer.AsSpan(_start + _length));
        second.CopyTo(_buffer.AsSpan(_start + _length + first.Length));
        _length = needed;
        return true;
    }

    /// <summary>Bytes written, 0 when the descriptor is full, -1 when the peer is gone (a socket raises no SIGPIPE).</summary>
    private int TryWrite(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return 0;
        fixed (byte* start = bytes)
        {
            while (true)
            {
                var written = socket
                    ? Libc.Send(fd, start, (nuint)bytes.Length, Libc.MsgNoSignal | Libc.MsgDontWait)
                    : Libc.Write(fd, start, (nuint)bytes.Length);
                if (written >= 0) return (int)written;
                var error = Descriptors.LastError;
                if (error == Libc.EIntr) continue;
                return error == Libc.EAgain ? 0 : -1;
            }
        }
    }
}
