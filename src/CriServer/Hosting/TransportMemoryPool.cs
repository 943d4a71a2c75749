using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Berth.CriServer.Hosting;

/// <summary>
/// Kestrel's buffers, in 16 KiB blocks instead of its own 4 KiB ones. Kestrel receives into one block at a time, so
/// with 4 KiB blocks a port-forward stream cost a receive (and a pipe hand-off) per 4 KiB: measured on a 64 MiB
/// echo, berthd spent about 60 % more CPU per byte than with 16 KiB blocks, which did as well as 64 KiB ones.
/// </summary>
internal sealed class TransportMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new TransportMemoryPool();
}

internal sealed class TransportMemoryPool : MemoryPool<byte>
{
    internal const int BlockSize = 16 * 1024;

    // Free blocks kept for reuse; beyond this (1 MiB) a returned block is left to the GC, so a burst of streams
    // does not hold its peak for good.
    private const int MaxFreeBlocks = 64;

    private readonly ConcurrentQueue<Block> _free = new();
    private int _freeCount;

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        // Pipes ask for no more than MaxBufferSize; anything larger gets an array of its own.
        if (minBufferSize > BlockSize) return new Block(null, new byte[minBufferSize]);
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _freeCount);
            block.Rented();
            return block;
        }
        return new Block(this, GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true));
    }

    private void Return(Block block)
    {
        if (Interlocked.Increment(ref _freeCount) > MaxFreeBlocks)
        {
            Interlocked.Decrement(ref _freeCount);
            return;
        }
        _free.Enqueue(block);
    }

    protected override void Dispose(bool disposing)
    {
    }

    private sealed class Block(TransportMemoryPool? pool, byte[] array) : IMemoryOwner<byte>
    {
        private int _returned;

        public Memory<byte> Memory => Volatile.Read(ref _returned) == 0 ? array : throw new ObjectDisposedException(nameof(Block));

        public void Rented() => Volatile.Write(ref _returned, 0);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _returned, 1) == 0) pool?.Return(this);
        }
    }
}
