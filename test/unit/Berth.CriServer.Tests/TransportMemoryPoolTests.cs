using Berth.CriServer.Hosting;

namespace Berth.CriServer.Tests;

public sealed class TransportMemoryPoolTests
{
    [Fact]
    public void Blocks_are_16_KiB_and_a_returned_block_is_reused()
    {
        using var pool = new TransportMemoryPool();
        var first = pool.Rent(4096);
        Assert.Equal(TransportMemoryPool.BlockSize, first.Memory.Length);
        var memory = first.Memory;
        first.Dispose();
        using var second = pool.Rent();
        Assert.True(memory.Span == second.Memory.Span, "the freed block should be handed out again");
    }

    [Fact]
    public void A_block_disposed_twice_goes_back_once_and_is_unusable_until_rented_again()
    {
        using var pool = new TransportMemoryPool();
        var block = pool.Rent();
        block.Dispose();
        block.Dispose();
        Assert.Throws<ObjectDisposedException>(() => block.Memory);
        using var a = pool.Rent();
        using var b = pool.Rent();
        Assert.False(a.Memory.Span == b.Memory.Span, "one free block must not be rented twice");
    }

    [Fact]
    public void A_request_above_the_block_size_gets_its_own_array()
    {
        using var pool = new TransportMemoryPool();
        using var large = pool.Rent(100_000);
        Assert.Equal(100_000, large.Memory.Length);
    }
}
