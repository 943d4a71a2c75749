using System.Text;
using Berth.Native;
using Berth.Shim.Logging;
using Berth.Shim.Native;
using Berth.ShimProtocol;

namespace Berth.Shim.Container;

/// <summary>The control socket: <see cref="ShimControlRequest"/>s, to reopen the CRI log or resize the terminal.</summary>
internal sealed unsafe class ControlServer(CriLogWriter? log, string? logPath, int console)
{
    /// <summary>One request per connection; the peer gets a second to send its line.</summary>
    public void Handle(int connection)
    {
        try
        {
            var buffer = new byte[256];
            var length = 0;
            var poll = new Libc.PollFd { Fd = connection, Events = Libc.PollIn };
            while (length < buffer.Length && Array.IndexOf(buffer, (byte)'\n', 0, length) < 0 && Libc.Poll(&poll, 1, 1000) > 0)
            {
                var read = Fd.Read(connection, buffer.AsSpan(length));
                if (read <= 0) break;
                length += read;
            }
            var reply = ShimControlRequest.Parse(Encoding.UTF8.GetString(buffer, 0, length)) switch
            {
                { Kind: ShimControlKind.Reopen } => Reopen(),
                { Kind: ShimControlKind.Resize } resize => Resize(resize.Columns, resize.Rows),
                _ => ShimControlRequest.Failed("unknown request"),
            };
            Fd.WriteAll(connection, Encoding.UTF8.GetBytes(reply + "\n"));
        }
        catch (IOException)
        {
        }
        finally
        {
            _ = Descriptors.Close(connection);
        }
    }

    private string Reopen()
    {
        if (log is null || logPath is null) return ShimControlRequest.Ok;
        try
        {
            log.Reopen(new AppendOnlyFile(logPath));
            return ShimControlRequest.Ok;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return ShimControlRequest.Failed(e.Message);
        }
    }

    private string Resize(ushort columns, ushort rows)
    {
        if (console < 0) return ShimControlRequest.Failed("the container has no terminal");
        var size = new Libc.WinSize { Columns = columns, Rows = rows };
        return Libc.Ioctl(console, Libc.TiocSWinSz, &size) == 0 ? ShimControlRequest.Ok : ShimControlRequest.Failed($"ioctl TIOCSWINSZ: errno {Descriptors.LastError}");
    }
}
