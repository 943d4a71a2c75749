using Berth.Native;
using Berth.Shim.Native;

namespace Berth.Shim.Tests;

public sealed class PollSetTests
{
    [Fact]
    public void Results_are_read_back_by_the_position_each_descriptor_was_added_at()
    {
        var (read, write) = Fd.Pipe();
        try
        {
            var poll = new PollSet(1); // grows past its first capacity
            poll.Add(read, Libc.PollIn);
            poll.Add(write, Libc.PollOut);
            Assert.Equal(1, poll.Wait(0));
            Assert.Equal(0, poll.Returned(0));
            Assert.Equal(Libc.PollOut, poll.Returned(1));

            Fd.WriteAll(write, "x"u8);
            poll.Clear();
            poll.Add(write, 0);
            poll.Add(read, Libc.PollIn);
            Assert.Equal(1, poll.Wait(0));
            Assert.Equal(0, poll.Returned(0));
            Assert.Equal(Libc.PollIn, poll.Returned(1));
        }
        finally
        {
            _ = Descriptors.Close(read);
            _ = Descriptors.Close(write);
        }
    }
}
