using Berth.Native;
using Berth.Shim.Logging;

namespace Berth.Shim.Native;

/// <summary>
/// A file opened O_APPEND on a raw descriptor, written with write(2) and nothing in between: each entry of the
/// CRI log leaves in one call, and the shim carries neither Stream's nor FileStream's machinery.
/// </summary>
internal sealed class AppendOnlyFile : ILogSink
{
    private const int OCreat = 0x40;
    private const int OAppend = 0x400;
    private int _fd;

    public AppendOnlyFile(string path)
    {
        _fd = Descriptors.Open(path, Descriptors.OWrOnly | OCreat | OAppend | Descriptors.OCloExec, 0x1A0 /* 0640 */);
        if (_fd < 0) throw Fd.Failure($"open {path}");
    }

    public void Write(ReadOnlySpan<byte> entry) => Fd.WriteAll(_fd, entry);

    public void Dispose()
    {
        if (_fd >= 0) _ = Descriptors.Close(_fd);
        _fd = -1;
    }
}
