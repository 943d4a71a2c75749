namespace Berth.Shim.Logging;

/// <summary>
/// UTC timestamps as <c>2026-11-23T01:02:03.4567891Z</c> (RFC 3339, seven fraction digits), written digit by digit:
/// DateTime's formatter would bring culture and format-string machinery into every shim.
/// </summary>
internal static class Rfc3339
{
    public const int Length = 28;

    public static int Write(DateTime utc, Span<byte> destination)
    {
        var d = destination[..Length];
        Digits(d[..4], utc.Year);
        d[4] = (byte)'-';
        Digits(d.Slice(5, 2), utc.Month);
        d[7] = (byte)'-';
        Digits(d.Slice(8, 2), utc.Day);
        d[10] = (byte)'T';
        Digits(d.Slice(11, 2), utc.Hour);
        d[13] = (byte)':';
        Digits(d.Slice(14, 2), utc.Minute);
        d[16] = (byte)':';
        Digits(d.Slice(17, 2), utc.Second);
        d[19] = (byte)'.';
        Digits(d.Slice(20, 7), (int)(utc.Ticks % TimeSpan.TicksPerSecond));
        d[27] = (byte)'Z';
        return Length;
    }

    public static string Format(DateTime utc)
    {
        Span<byte> bytes = stackalloc byte[Length];
        Write(utc, bytes);
        return System.Text.Encoding.ASCII.GetString(bytes);
    }

    private static void Digits(Span<byte> destination, int value)
    {
        for (var i = destination.Length - 1; i >= 0; i--)
        {
            destination[i] = (byte)('0' + value % 10);
            value /= 10;
        }
    }
}
