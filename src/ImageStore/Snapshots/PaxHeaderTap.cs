using System.Buffers.Binary;
using System.Text;

namespace Berth.ImageStore.Snapshots;

/// <summary>
/// Passes a tar stream through to System.Formats.Tar's reader and keeps, for each entry the reader yields, the
/// xattrs of its PAX extended header as bytes. The reader decodes PAX values as UTF-8, which damages binary
/// values such as <c>security.capability</c>, and splits records at the first newline, so a binary value holding
/// 0x0a makes it refuse the layer. The tap follows the tar block structure (POSIX.1-2001 pax, ustar and GNU long
/// names) as the bytes go by, never reading past a header or a data section in one read, takes each PAX header's
/// records whole, and hands the reader a copy whose xattr values are overwritten with '0's of the same length, so
/// every size and offset stays; the reader still validates everything else. Digests are taken below the tap.
/// </summary>
internal sealed class PaxHeaderTap(Stream inner) : Content.ReadOnlyStream
{
    private const int Block = 512;
    private static readonly byte[] SchilyXattr = "SCHILY.xattr."u8.ToArray();
    private static readonly byte[] LibarchiveXattr = "LIBARCHIVE.xattr."u8.ToArray();

    private readonly Queue<Dictionary<string, byte[]>?> _entries = new();
    private readonly byte[] _header = new byte[Block];
    private int _headerFill;
    private long _skip;
    private long _paxSize = -1;
    private byte[] _paxOut = [];
    private int _paxServed;
    private Dictionary<string, byte[]>? _pending;
    private long? _pendingSize;

    /// <summary>The xattrs (name to value) of the next entry the reader yields, in the order it yields them; null for none.</summary>
    public IReadOnlyDictionary<string, byte[]>? TakeEntryXattrs() => _entries.TryDequeue(out var xattrs) ? xattrs : null;

    public override int Read(Span<byte> buffer)
    {
        if (_paxSize >= 0) OnPaxData(inner.ReadAtLeast(NewPaxBuffer(), _paxOut.Length, throwOnEndOfStream: false));
        if (ServePax(buffer) is var served and > 0) return served;
        var read = inner.Read(buffer[..Limit(buffer.Length)]);
        Observe(buffer[..read]);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_paxSize >= 0) OnPaxData(await inner.ReadAtLeastAsync(NewPaxBuffer(), _paxOut.Length, throwOnEndOfStream: false, cancellationToken));
        if (ServePax(buffer.Span) is var served and > 0) return served;
        var read = await inner.ReadAsync(buffer[..Limit(buffer.Length)], cancellationToken);
        Observe(buffer.Span[..read]);
        return read;
    }

    /// <summary>Room for the PAX header's data section and its padding, read whole before the reader sees any of it.</summary>
    private byte[] NewPaxBuffer() => _paxOut = new byte[RegionOf(_paxSize)];

    /// <summary>The PAX header's data section (and its padding) has been read: keep its xattrs, blank them for the reader.</summary>
    private void OnPaxData(int got)
    {
        if (got < _paxOut.Length) Array.Resize(ref _paxOut, got);
        var records = _paxOut.AsSpan(0, (int)Math.Min(_paxSize, got));
        (_pending, _pendingSize) = ParseRecords(records);
        _paxSize = -1;
        _paxServed = 0;
    }

    private int ServePax(Span<byte> buffer)
    {
        if (_paxServed >= _paxOut.Length) return 0;
        var n = Math.Min(buffer.Length, _paxOut.Length - _paxServed);
        _paxOut.AsSpan(_paxServed, n).CopyTo(buffer);
        _paxServed += n;
        return n;
    }

    /// <summary>So that one read never spans a header and what follows it.</summary>
    private int Limit(int length) => (int)Math.Min(length, _skip > 0 ? _skip : Block - _headerFill);

    private static int RegionOf(long size) => (int)((size + Block - 1) / Block * Block);

    private void Observe(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        if (_skip > 0)
        {
            _skip -= data.Length;
            return;
        }
        data.CopyTo(_header.AsSpan(_headerFill));
        _headerFill += data.Length;
        if (_headerFill < Block) return;
        _headerFill = 0;
        OnHeader();
    }

    private void OnHeader()
    {
        // The end-of-archive blocks are zeros.
        if (!_header.AsSpan().ContainsAnyExcept((byte)0)) return;
        var size = ParseSize(_header.AsSpan(124, 12));
        switch (_header[156])
        {
            case (byte)'x':
                // A PAX header's records are bounded by what the reader itself accepts; the next read takes them whole.
                if (size is < 0 or > 1 << 20) throw new ImageFormatException($"a PAX extended header of {size} bytes is larger than 1 MiB");
                (_pending, _pendingSize) = (null, null);
                if (size > 0) _paxSize = size;
                return;
            case (byte)'L' or (byte)'K':
                break;
            default:
                // An entry the reader yields (a global 'g' header included); a pax "size" overrides the header's.
                _entries.Enqueue(_pending);
                if (_pendingSize is { } paxSize) size = paxSize;
                (_pending, _pendingSize) = (null, null);
                break;
        }
        _skip = RegionOf(size);
    }

    /// <summary>ustar's size field: octal digits, or base-256 when the top bit of the first byte is set (GNU, star).</summary>
    private static long ParseSize(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0) return BinaryPrimitives.ReadInt64BigEndian(field[^8..]);
        long size = 0;
        var digits = false;
        foreach (var b in field)
        {
            if (b is >= (byte)'0' and <= (byte)'7')
            {
                size = size * 8 + (b - '0');
                digits = true;
            }
            else if (digits || b is not ((byte)' ' or 0))
            {
                break;
            }
        }
        return size;
    }

    /// <summary>"&lt;length&gt; &lt;key&gt;=&lt;value&gt;\n" records; values are bytes. Malformed records end the parse (the reader refuses them).</summary>
    private static (Dictionary<string, byte[]>? Xattrs, long? Size) ParseRecords(Span<byte> records)
    {
        Dictionary<string, byte[]>? xattrs = null;
        long? size = null;
        var libarchive = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        while (!records.IsEmpty)
        {
            var space = records.IndexOf((byte)' ');
            if (space <= 0 || !int.TryParse(records[..space], System.Globalization.NumberStyles.None, null, out var length) || length <= space || length > records.Length) break;
            var record = records[(space + 1)..(length - 1)];
            records = records[length..];
            var equals = record.IndexOf((byte)'=');
            if (equals < 0) break;
            var key = record[..equals];
            var value = record[(equals + 1)..];
            if (key.StartsWith(SchilyXattr))
            {
                (xattrs ??= new(StringComparer.Ordinal))[Encoding.UTF8.GetString(key[SchilyXattr.Length..])] = value.ToArray();
                value.Fill((byte)'0');
            }
            else if (key.StartsWith(LibarchiveXattr) && DecodeBase64(value) is { } decoded)
            {
                libarchive[Uri.UnescapeDataString(Encoding.UTF8.GetString(key[LibarchiveXattr.Length..]))] = decoded;
            }
            else if (key.SequenceEqual("size"u8) && long.TryParse(value, System.Globalization.NumberStyles.None, null, out var paxSize))
                size = paxSize;
        }
        // libarchive writes both forms; the SCHILY one is the value itself.
        foreach (var (name, value) in libarchive) (xattrs ??= new(StringComparer.Ordinal)).TryAdd(name, value);
        return (xattrs, size);
    }

    /// <summary>libarchive's base64, which leaves out the '=' padding.</summary>
    private static byte[]? DecodeBase64(ReadOnlySpan<byte> value)
    {
        var text = Encoding.ASCII.GetString(value);
        text = text.PadRight(text.Length + (4 - text.Length % 4) % 4, '=');
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
