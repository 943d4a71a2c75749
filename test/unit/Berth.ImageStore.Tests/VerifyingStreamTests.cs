using Berth.ImageStore.Content;

namespace Berth.ImageStore.Tests;

public sealed class VerifyingStreamTests
{
    private static readonly byte[] Data = [.. Enumerable.Range(0, 10_000).Select(i => (byte)i)];
    private static readonly Digest DataDigest = Digest.Compute(Data);

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, 1000);
        return copy.ToArray();
    }

    [Fact]
    public async Task Matching_content_is_verified_and_teed_to_the_sink()
    {
        using var sink = new MemoryStream();
        await using var stream = new VerifyingStream(new MemoryStream(Data), DataDigest, Data.Length, sink);

        Assert.Equal(Data, await ReadAllAsync(stream));
        Assert.True(stream.Verified);
        Assert.Equal(Data, sink.ToArray());
        Assert.Equal(DataDigest, stream.Digest());
    }

    [Fact]
    public async Task More_bytes_than_declared_stop_the_read_at_once()
    {
        await using var stream = new VerifyingStream(new MemoryStream(Data), DataDigest, Data.Length - 1, sink: null);
        var error = await Assert.ThrowsAsync<ImageFormatException>(() => ReadAllAsync(stream));
        Assert.Contains("larger than its declared size of 9999 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fewer_bytes_than_declared_are_a_truncation()
    {
        await using var stream = new VerifyingStream(new MemoryStream(Data), DataDigest, Data.Length + 1, sink: null);
        var error = await Assert.ThrowsAsync<ImageFormatException>(() => ReadAllAsync(stream));
        Assert.Contains("is truncated: 10000 of 10001 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Other_content_of_the_right_size_fails_the_digest()
    {
        var tampered = (byte[])Data.Clone();
        tampered[5000] ^= 1;
        await using var stream = new VerifyingStream(new MemoryStream(tampered), DataDigest, Data.Length, sink: null);
        var error = await Assert.ThrowsAsync<ImageFormatException>(() => ReadAllAsync(stream));
        Assert.Contains("does not match its digest", error.Message, StringComparison.Ordinal);
        Assert.False(stream.Verified);
    }

    [Fact]
    public async Task A_zero_length_read_is_not_the_end()
    {
        await using var stream = new VerifyingStream(new MemoryStream(Data), DataDigest, Data.Length, sink: null);
        Assert.Equal(0, await stream.ReadAsync(Memory<byte>.Empty));
        Assert.False(stream.Verified);
        await stream.DrainAsync(CancellationToken.None);
        Assert.True(stream.Verified);
    }

    [Fact]
    public async Task The_content_store_never_shows_an_unverified_blob()
    {
        var root = Directory.CreateTempSubdirectory("berth-unit-").FullName;
        try
        {
            var store = new ContentStore(root);
            await using (var ingest = store.BeginIngest(DataDigest, Data.Length))
            {
                await using var stream = new VerifyingStream(new MemoryStream(Data[..5000]), DataDigest, Data.Length, ingest.File);
                await Assert.ThrowsAsync<ImageFormatException>(() => ReadAllAsync(stream));
            }
            Assert.False(store.Contains(DataDigest));
            Assert.Empty(Directory.EnumerateFiles(Path.Combine(root, "ingest")));

            await store.PutAsync(DataDigest, Data, CancellationToken.None);
            Assert.True(store.Contains(DataDigest));
            Assert.Equal(Data, await store.ReadAsync(DataDigest, CancellationToken.None));
            await Assert.ThrowsAsync<ImageFormatException>(() => store.PutAsync(Digest.Compute("other"u8), Data, CancellationToken.None));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
