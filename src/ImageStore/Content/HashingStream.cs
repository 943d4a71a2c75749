using System.Security.Cryptography;

namespace Berth.ImageStore.Content;

/// <summary>Hashes what is read through it: the uncompressed layer, to check it against the config's diff ID. Leaves its source open.</summary>
internal sealed class HashingStream(Stream source) : ReadOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public Digest Digest() => Content.Digest.FromHash(_hash.GetCurrentHash());

    public override int Read(Span<byte> buffer)
    {
        var read = source.Read(buffer);
        _hash.AppendData(buffer[..read]);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await source.ReadAsync(buffer, cancellationToken);
        _hash.AppendData(buffer.Span[..read]);
        return read;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }
}
