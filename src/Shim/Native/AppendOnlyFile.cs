namespace Berth.Shim.Native;

/// <summary>
/// A file opened O_APPEND on a raw descriptor, written with write(2) and nothing in between: each entry of the
/// CRI log leaves in one call, and the shim does not carry FileStream's machinery.
/// </summary>
internal sealed class AppendOnlyFile : Stream
{
    private const int OCreat = 0x40;
    private const int OAppend = 0x400;
    private int _fd;

    public AppendOnlyFile(string path)
    {
        _fd = Libc.Open(path, Libc.OWrOnly | OCreat | OAppend | Libc.OCloExec, 0x1A0 /* 0640 */);
        if (_fd < 0) throw Fd.Failure($"open {path}");
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(ReadOnlySpan<byte> buffer) => Fd.WriteAll(_fd, buffer);

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (_fd >= 0) _ = Libc.Close(_fd);
        _fd = -1;
        base.Dispose(disposing);
    }
}
