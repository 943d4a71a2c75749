using System.Buffers.Binary;

namespace Berth.Nri.Transport;

/// <summary>ttrpc's message types (PROTOCOL.md "Message Types").</summary>
public enum TtrpcMessageType : byte
{
    Request = 0x1,
    Response = 0x2,
    Data = 0x3,
}

/// <summary>
/// A ttrpc frame header (PROTOCOL.md "Message Frame"): data length and stream ID, both big-endian 32-bit, then the
/// message type and its flags, one byte each. Ten bytes; the data follows.
/// </summary>
public readonly record struct TtrpcFrame(uint Length, uint StreamId, TtrpcMessageType Type, byte Flags)
{
    public const int HeaderLength = 10;

    /// <summary>The largest data a frame may carry; a longer one is refused.</summary>
    public const int MaxDataLength = 4 << 20;

    /// <summary>Request flag: non-unary, the remote sends no more data.</summary>
    public const byte FlagRemoteClosed = 0x1;

    /// <summary>Request flag: non-unary, the remote is still sending data.</summary>
    public const byte FlagRemoteOpen = 0x2;

    /// <summary>Data flag: the message carries no data.</summary>
    public const byte FlagNoData = 0x4;

    public void Write(Span<byte> header)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header, Length);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], StreamId);
        header[8] = (byte)Type;
        header[9] = Flags;
    }

    public static TtrpcFrame Read(ReadOnlySpan<byte> header) => new(
        BinaryPrimitives.ReadUInt32BigEndian(header),
        BinaryPrimitives.ReadUInt32BigEndian(header[4..]),
        (TtrpcMessageType)header[8],
        header[9]);
}
