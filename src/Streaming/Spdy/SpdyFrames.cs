using System.Buffers;
using System.Buffers.Binary;

namespace Berth.Streaming.Spdy;

/// <summary>SPDY/3 control frame types (draft 3, section 2.6). NOOP (5) was removed in 3, CREDENTIAL (10) is never sent.</summary>
internal enum SpdyControlType : ushort
{
    SynStream = 1,
    SynReply = 2,
    RstStream = 3,
    Settings = 4,
    Ping = 6,
    GoAway = 7,
    Headers = 8,
    WindowUpdate = 9,
}

/// <summary>RST_STREAM status codes (section 2.4.2).</summary>
internal enum SpdyRstStatus
{
    ProtocolError = 1,
    InvalidStream = 2,
    RefusedStream = 3,
    UnsupportedVersion = 4,
    Cancel = 5,
    InternalError = 6,
    FlowControlError = 7,
    StreamInUse = 8,
    StreamAlreadyClosed = 9,
    FrameTooLarge = 11,
}

/// <summary>GOAWAY status codes (section 2.6.6).</summary>
internal enum SpdyGoAwayStatus
{
    Ok = 0,
    ProtocolError = 1,
    InternalError = 2,
}

internal static class SpdyFlags
{
    public const byte Fin = 0x01;
    public const byte Unidirectional = 0x02;
    public const byte ClearSettings = 0x01;
}

internal static class SpdySettingId
{
    public const int MaxConcurrentStreams = 4;
    public const int InitialWindowSize = 7;
}

/// <summary>The 8 bytes in front of every frame. For a data frame <see cref="Type"/> is 0 and <see cref="StreamId"/> is set.</summary>
internal readonly record struct SpdyFrameHeader(bool IsControl, ushort Version, SpdyControlType Type, int StreamId, byte Flags, int Length)
{
    public const int Size = 8;
    public const int MaxLength = (1 << 24) - 1;

    public static SpdyFrameHeader Parse(ReadOnlySpan<byte> header)
    {
        var first = BinaryPrimitives.ReadUInt32BigEndian(header);
        var flags = header[4];
        var length = (int)(BinaryPrimitives.ReadUInt32BigEndian(header[4..]) & 0x00FFFFFF);
        return (first & 0x80000000) != 0
            ? new SpdyFrameHeader(true, (ushort)((first >> 16) & 0x7FFF), (SpdyControlType)(first & 0xFFFF), 0, flags, length)
            : new SpdyFrameHeader(false, 0, 0, (int)(first & 0x7FFFFFFF), flags, length);
    }
}

/// <summary>Writes SPDY/3 frames. Header blocks arrive already compressed (compression is stateful per session).</summary>
internal static class SpdyFrameWriter
{
    public const ushort Version = 3;

    public static void WriteControlHeader(IBufferWriter<byte> writer, SpdyControlType type, byte flags, int length)
    {
        var span = writer.GetSpan(SpdyFrameHeader.Size);
        BinaryPrimitives.WriteUInt32BigEndian(span, 0x80000000u | ((uint)Version << 16) | (uint)type);
        BinaryPrimitives.WriteUInt32BigEndian(span[4..], ((uint)flags << 24) | (uint)length);
        writer.Advance(SpdyFrameHeader.Size);
    }

    public static void WriteDataHeader(IBufferWriter<byte> writer, int streamId, byte flags, int length)
    {
        var span = writer.GetSpan(SpdyFrameHeader.Size);
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)streamId & 0x7FFFFFFF);
        BinaryPrimitives.WriteUInt32BigEndian(span[4..], ((uint)flags << 24) | (uint)length);
        writer.Advance(SpdyFrameHeader.Size);
    }

    public static void WriteSynStream(IBufferWriter<byte> writer, int streamId, int associatedId, byte priority, byte flags, ReadOnlySpan<byte> compressedHeaders)
    {
        WriteControlHeader(writer, SpdyControlType.SynStream, flags, 10 + compressedHeaders.Length);
        var span = writer.GetSpan(10);
        BinaryPrimitives.WriteInt32BigEndian(span, streamId & 0x7FFFFFFF);
        BinaryPrimitives.WriteInt32BigEndian(span[4..], associatedId & 0x7FFFFFFF);
        span[8] = (byte)((priority & 0x7) << 5);
        span[9] = 0; // slot
        writer.Advance(10);
        writer.Write(compressedHeaders);
    }

    public static void WriteSynReply(IBufferWriter<byte> writer, int streamId, byte flags, ReadOnlySpan<byte> compressedHeaders) =>
        WriteStreamHeaders(writer, SpdyControlType.SynReply, streamId, flags, compressedHeaders);

    private static void WriteStreamHeaders(IBufferWriter<byte> writer, SpdyControlType type, int streamId, byte flags, ReadOnlySpan<byte> compressedHeaders)
    {
        WriteControlHeader(writer, type, flags, 4 + compressedHeaders.Length);
        WriteInt32(writer, streamId & 0x7FFFFFFF);
        writer.Write(compressedHeaders);
    }

    public static void WriteRstStream(IBufferWriter<byte> writer, int streamId, SpdyRstStatus status)
    {
        WriteControlHeader(writer, SpdyControlType.RstStream, 0, 8);
        WriteInt32(writer, streamId & 0x7FFFFFFF);
        WriteInt32(writer, (int)status);
    }

    public static void WriteSettings(IBufferWriter<byte> writer, byte flags, ReadOnlySpan<(int Id, int Value)> settings)
    {
        WriteControlHeader(writer, SpdyControlType.Settings, flags, 4 + 8 * settings.Length);
        WriteInt32(writer, settings.Length);
        foreach (var (id, value) in settings)
        {
            WriteInt32(writer, id & 0x00FFFFFF); // per-entry flags 0
            WriteInt32(writer, value);
        }
    }

    public static void WritePing(IBufferWriter<byte> writer, uint id)
    {
        WriteControlHeader(writer, SpdyControlType.Ping, 0, 4);
        WriteInt32(writer, (int)id);
    }

    public static void WriteGoAway(IBufferWriter<byte> writer, int lastGoodStreamId, SpdyGoAwayStatus status)
    {
        WriteControlHeader(writer, SpdyControlType.GoAway, 0, 8);
        WriteInt32(writer, lastGoodStreamId & 0x7FFFFFFF);
        WriteInt32(writer, (int)status);
    }

    public static void WriteWindowUpdate(IBufferWriter<byte> writer, int streamId, int delta)
    {
        WriteControlHeader(writer, SpdyControlType.WindowUpdate, 0, 8);
        WriteInt32(writer, streamId & 0x7FFFFFFF);
        WriteInt32(writer, delta & 0x7FFFFFFF);
    }

    private static void WriteInt32(IBufferWriter<byte> writer, int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(writer.GetSpan(4), value);
        writer.Advance(4);
    }
}
