using System.Security.Cryptography;

namespace Berth.ImageStore.Content;

/// <summary>
/// A read-through stream that hashes what passes, copies it to a sink (the blob's ingest file), refuses
/// to read past the declared size, and at end of stream checks the size and digest. The consumer
/// (gunzip, the tar reader) never sees a byte beyond what the descriptor allows.
/// </summary>
public sealed class VerifyingStream(Stream source, Digest expected, long expectedSize, Stream? sink) : ReadOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _length;

    public long BytesRead => _length;

    /// <summary>True once the whole stream was read and matched its digest and size.</summary>
    public bool Verified { get; private set; }

    public override int Read(Span<byte> buffer)
    {
        var read = source.Read(buffer);
        Account(buffer[..read], endOfStream: read == 0 && !buffer.IsEmpty);
        sink?.Write(buffer[..read]);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await source.ReadAsync(buffer, cancellationToken);
        Account(buffer.Span[..read], endOfStream: read == 0 && !buffer.IsEmpty);
        if (sink is not null) await sink.WriteAsync(buffer[..read], cancellationToken);
        return read;
    }

    public Digest Digest() => Content.Digest.FromHash(_hash.GetCurrentHash());

    private void Account(ReadOnlySpan<byte> data, bool endOfStream)
    {
        if (endOfStream)
        {
            if (Verified) return;
            if (_length != expectedSize)
                throw new ImageFormatException($"blob {expected} is truncated: {_length} of {expectedSize} bytes");
            var actual = Digest();
            if (actual != expected)
                throw new ImageFormatException($"blob {expected} does not match its digest: got {actual}");
            Verified = true;
            return;
        }
        _length += data.Length;
        if (_length > expectedSize)
            throw new ImageFormatException($"blob {expected} is larger than its declared size of {expectedSize} bytes");
        _hash.AppendData(data);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            source.Dispose();
        }
        base.Dispose(disposing);
    }
}
