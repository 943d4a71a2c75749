using System.Buffers;
using Berth.Streaming.Spdy;

namespace Berth.Streaming.Tests;

/// <summary>Frame layouts from SPDY/3 section 2.6, byte for byte.</summary>
public sealed class SpdyFrameTests
{
    private static string Hex(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return Convert.ToHexStringLower(buffer.WrittenSpan);
    }

    [Fact]
    public void Syn_stream() =>
        Assert.Equal("80030001" + "0100000c" + "00000003" + "00000000" + "6000" + "aabb",
            Hex(w => SpdyFrameWriter.WriteSynStream(w, 3, 0, 3, SpdyFlags.Fin, [0xaa, 0xbb])));

    [Fact]
    public void Syn_reply() => Assert.Equal("80030002" + "00000005" + "00000001" + "cc", Hex(w => SpdyFrameWriter.WriteSynReply(w, 1, 0, [0xcc])));

    [Fact]
    public void Rst_stream() => Assert.Equal("80030003" + "00000008" + "00000005" + "00000005", Hex(w => SpdyFrameWriter.WriteRstStream(w, 5, SpdyRstStatus.Cancel)));

    [Fact]
    public void Settings() =>
        Assert.Equal("80030004" + "0000000c" + "00000001" + "00000007" + "00100000",
            Hex(w => SpdyFrameWriter.WriteSettings(w, 0, [(SpdySettingId.InitialWindowSize, 1 << 20)])));

    [Fact]
    public void Ping() => Assert.Equal("80030006" + "00000004" + "00000007", Hex(w => SpdyFrameWriter.WritePing(w, 7)));

    [Fact]
    public void Goaway() => Assert.Equal("80030007" + "00000008" + "00000009" + "00000000", Hex(w => SpdyFrameWriter.WriteGoAway(w, 9, SpdyGoAwayStatus.Ok)));

    [Fact]
    public void Window_update() => Assert.Equal("80030009" + "00000008" + "00000003" + "00008000", Hex(w => SpdyFrameWriter.WriteWindowUpdate(w, 3, 32768)));

    [Fact]
    public void Data_header() => Assert.Equal("00000003" + "01000010", Hex(w => SpdyFrameWriter.WriteDataHeader(w, 3, SpdyFlags.Fin, 16)));

    [Fact]
    public void Control_headers_parse()
    {
        var header = SpdyFrameHeader.Parse(Convert.FromHexString("8003000901000008"));
        Assert.True(header.IsControl);
        Assert.Equal(3, header.Version);
        Assert.Equal(SpdyControlType.WindowUpdate, header.Type);
        Assert.Equal(1, header.Flags);
        Assert.Equal(8, header.Length);
    }

    [Fact]
    public void Data_headers_parse()
    {
        var header = SpdyFrameHeader.Parse(Convert.FromHexString("7fffffff01ffffff"));
        Assert.False(header.IsControl);
        Assert.Equal(int.MaxValue, header.StreamId);
        Assert.Equal(SpdyFlags.Fin, header.Flags);
        Assert.Equal(SpdyFrameHeader.MaxLength, header.Length);
    }
}
