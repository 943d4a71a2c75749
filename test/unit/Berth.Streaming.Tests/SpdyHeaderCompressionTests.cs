using System.Buffers;
using Berth.Streaming.Spdy;

namespace Berth.Streaming.Tests;

public sealed class SpdyHeaderCompressionTests
{
    // The first three SYN_STREAM header blocks of a real `crictl exec` (Go's compress/zlib through spdystream),
    // captured with strace: one zlib stream, each block sync-flushed.
    private static readonly string[] CrictlBlocks =
    [
        "78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff",
        "c22ac5565c92925f5a02000000ffff",
        "c229975a5404000000ffff",
    ];

    [Fact]
    public void The_dictionary_is_the_SPDY3_one()
    {
        Assert.Equal(1423, SpdyDictionary.Bytes.Length);
        Assert.Equal(0xe3c6a7c2u, Adler32(SpdyDictionary.Bytes));
    }

    [Fact]
    public void Header_blocks_from_a_Go_client_inflate_in_order()
    {
        using var inflater = SpdyHeaderCompression.CreateInflater();
        string[] expected = ["error", "stdout", "stderr"];
        for (var i = 0; i < CrictlBlocks.Length; i++)
        {
            var headers = SpdyHeaderBlock.Decode(inflater.Decompress(Convert.FromHexString(CrictlBlocks[i]), 64 * 1024));
            Assert.Equal(expected[i], Assert.Single(headers, h => h.Key == "streamtype").Value);
            Assert.Equal(expected[i], headers["streamType"]); // names compare case-insensitively
        }
    }

    [Fact]
    public void Our_blocks_name_the_SPDY3_dictionary_and_round_trip_across_a_session()
    {
        using var deflater = SpdyHeaderCompression.CreateDeflater();
        using var inflater = SpdyHeaderCompression.CreateInflater();
        for (var i = 0; i < 5; i++)
        {
            var plain = new ArrayBufferWriter<byte>();
            SpdyHeaderBlock.Encode([new("streamType", "stdout"), new("port", $"{8080 + i}"), new("requestID", $"{i}")], plain);
            var compressed = new ArrayBufferWriter<byte>();
            deflater.Compress(plain.WrittenSpan, compressed);
            if (i == 0)
            {
                var zlibHeader = compressed.WrittenSpan;
                Assert.Equal(0x78, zlibHeader[0]);
                Assert.NotEqual(0, zlibHeader[1] & 0x20); // FDICT
                Assert.Equal("e3c6a7c2", Convert.ToHexStringLower(zlibHeader.Slice(2, 4)));
            }
            // A sync flush ends every block with the empty stored block.
            Assert.Equal("0000ffff", Convert.ToHexStringLower(compressed.WrittenSpan[^4..]));
            var headers = SpdyHeaderBlock.Decode(inflater.Decompress(compressed.WrittenSpan, 1024));
            Assert.Equal("stdout", headers["streamtype"]);
            Assert.Equal($"{8080 + i}", headers["port"]);
            Assert.Equal($"{i}", headers["requestid"]);
        }
    }

    [Fact]
    public void The_plain_block_layout_is_counted_and_length_prefixed()
    {
        var plain = new ArrayBufferWriter<byte>();
        SpdyHeaderBlock.Encode([new("streamType", "error")], plain);
        Assert.Equal("00000001" + "0000000a" + Convert.ToHexStringLower("streamtype"u8) + "00000005" + Convert.ToHexStringLower("error"u8),
            Convert.ToHexStringLower(plain.WrittenSpan));
    }

    [Fact]
    public void A_block_that_inflates_past_the_limit_is_refused()
    {
        using var deflater = SpdyHeaderCompression.CreateDeflater();
        using var inflater = SpdyHeaderCompression.CreateInflater();
        var plain = new ArrayBufferWriter<byte>();
        SpdyHeaderBlock.Encode([new("big", new string('a', 10_000))], plain);
        var compressed = new ArrayBufferWriter<byte>();
        deflater.Compress(plain.WrittenSpan, compressed);
        Assert.Throws<SpdyProtocolException>(() => inflater.Decompress(compressed.WrittenSpan, 1000));
    }

    [Theory]
    [InlineData("00000001")] // a pair count with nothing after it
    [InlineData("00000001000000ff61")] // a name longer than the block
    [InlineData("ffffffff")] // a negative count
    public void Malformed_plain_blocks_are_protocol_errors(string hex) =>
        Assert.Throws<SpdyProtocolException>(() => SpdyHeaderBlock.Decode(Convert.FromHexString(hex)));

    private static uint Adler32(ReadOnlySpan<byte> data)
    {
        uint a = 1, b = 0;
        foreach (var value in data)
        {
            a = (a + value) % 65521;
            b = (b + a) % 65521;
        }
        return (b << 16) | a;
    }
}
