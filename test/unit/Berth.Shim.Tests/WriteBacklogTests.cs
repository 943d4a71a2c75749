using Berth.Native;
using Berth.Shim.Container;
using Berth.Shim.Native;

namespace Berth.Shim.Tests;

/// <summary>Writes to a peer that stops reading wait in a bounded backlog instead of blocking the shim's loop.</summary>
public sealed class WriteBacklogTests : IDisposable
{
    private int _read;
    private readonly int _write;

    public WriteBacklogTests()
    {
        (_read, _write) = Fd.Pipe();
        Fd.SetNonBlocking(_read);
        Fd.SetNonBlocking(_write);
    }

    public void Dispose()
    {
        if (_read >= 0) _ = Descriptors.Close(_read);
        _ = Descriptors.Close(_write);
    }

    [Fact]
    public void What_the_pipe_cannot_take_is_kept_in_order_and_flushed_once_it_is_read()
    {
        var backlog = new WriteBacklog(_write, 1 << 20, socket: false);
        var sent = new List<byte>();
        for (var i = 0; backlog.IsEmpty; i++)
        {
            var header = new[] { (byte)(i % 251) };
            var data = Enumerable.Repeat((byte)(i % 13), 4096).ToArray();
            Assert.True(backlog.Write(header, data));
            sent.AddRange(header);
            sent.AddRange(data);
        }
        Assert.True(backlog.Write("tail"u8, []));
        sent.AddRange("tail"u8.ToArray());

        var received = new List<byte>();
        var buffer = new byte[64 * 1024];
        while (received.Count < sent.Count)
        {
            var read = Fd.Read(_read, buffer);
            if (read > 0) received.AddRange(buffer[..read]);
            Assert.True(backlog.Flush());
        }
        Assert.True(backlog.IsEmpty);
        Assert.Equal(sent, received);
    }

    [Fact]
    public void A_peer_too_far_behind_is_refused_and_marked()
    {
        var backlog = new WriteBacklog(_write, 256 * 1024, socket: false);
        var chunk = new byte[32 * 1024];
        var accepted = 0;
        while (backlog.Write([], chunk)) accepted++;
        Assert.True(backlog.Overflowed);
        Assert.InRange(accepted, 8, 64); // the pipe's own 64 KiB, then the 256 KiB backlog
    }

    [Fact]
    public void A_peer_that_is_gone_is_reported()
    {
        var backlog = new WriteBacklog(_write, 1 << 20, socket: false);
        _ = Descriptors.Close(_read);
        _read = -1;
        Assert.False(backlog.Write("x"u8, []));
        Assert.False(backlog.Overflowed);
    }
}
