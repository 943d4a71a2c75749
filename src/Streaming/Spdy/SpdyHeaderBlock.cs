using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Berth.Streaming.Spdy;

/// <summary>
/// The uncompressed name/value header block (section 2.6.10): a 32-bit pair count, then per pair a 32-bit length and
/// the lowercase name, a 32-bit length and the value (several values joined by NUL).
/// </summary>
internal static class SpdyHeaderBlock
{
    public static void Encode(IReadOnlyCollection<KeyValuePair<string, string>> headers, IBufferWriter<byte> output)
    {
        WriteInt32(output, headers.Count);
        foreach (var (name, value) in headers)
        {
            WriteString(output, name.ToLowerInvariant());
            WriteString(output, value);
        }
    }

    /// <summary>Parses a block; names are case-insensitive in the result, repeated names keep their first value.</summary>
    public static Dictionary<string, string> Decode(ReadOnlySpan<byte> block)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var count = ReadLength(ref block, "pair count");
        if (count > 1024) throw new SpdyProtocolException($"a header block has {count} pairs");
        for (var i = 0; i < count; i++)
        {
            var name = ReadString(ref block, "name");
            if (name.Length == 0) throw new SpdyProtocolException("a header name is empty");
            var value = ReadString(ref block, "value");
            headers.TryAdd(name, value);
        }
        return headers;
    }

    private static int ReadLength(ref ReadOnlySpan<byte> block, string what)
    {
        if (block.Length < 4) throw new SpdyProtocolException($"a header block ends inside a {what}");
        var value = BinaryPrimitives.ReadInt32BigEndian(block);
        if (value < 0) throw new SpdyProtocolException($"a header {what} is negative");
        block = block[4..];
        return value;
    }

    private static string ReadString(ref ReadOnlySpan<byte> block, string what)
    {
        var length = ReadLength(ref block, what + " length");
        if (block.Length < length) throw new SpdyProtocolException($"a header {what} runs past the block");
        var text = Encoding.UTF8.GetString(block[..length]);
        block = block[length..];
        return text;
    }

    private static void WriteString(IBufferWriter<byte> output, string text)
    {
        var length = Encoding.UTF8.GetByteCount(text);
        WriteInt32(output, length);
        var span = output.GetSpan(length);
        Encoding.UTF8.GetBytes(text, span);
        output.Advance(length);
    }

    private static void WriteInt32(IBufferWriter<byte> output, int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(output.GetSpan(4), value);
        output.Advance(4);
    }
}

/// <summary>The peer broke the protocol; the session answers with RST_STREAM or GOAWAY PROTOCOL_ERROR.</summary>
public sealed class SpdyProtocolException(string message) : Exception(message);
