using System.Globalization;

namespace Berth.CriServer.Configuration;

/// <summary>Go's duration syntax (a sequence of number+unit: "1h30m", "250ms", "2.5s"), as containerd's config uses.</summary>
public static class DurationParser
{
    /// <summary>Formats in the largest unit that is exact: "90s", "250ms", "2m".</summary>
    public static string Format(TimeSpan duration)
    {
        if (duration == TimeSpan.Zero) return "0";
        if (duration.Ticks % TimeSpan.TicksPerMinute == 0) return $"{duration.Ticks / TimeSpan.TicksPerMinute}m";
        if (duration.Ticks % TimeSpan.TicksPerSecond == 0) return $"{duration.Ticks / TimeSpan.TicksPerSecond}s";
        if (duration.Ticks % TimeSpan.TicksPerMillisecond == 0) return $"{duration.Ticks / TimeSpan.TicksPerMillisecond}ms";
        return $"{duration.Ticks / TimeSpan.TicksPerMicrosecond}us";
    }

    public static bool TryParse(ReadOnlySpan<char> text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (text.IsEmpty) return false;
        if (text is "0") return true;

        var ticks = 0.0;
        while (!text.IsEmpty)
        {
            var numberLength = 0;
            while (numberLength < text.Length && (char.IsAsciiDigit(text[numberLength]) || text[numberLength] == '.'))
                numberLength++;
            if (numberLength == 0 ||
                !double.TryParse(text[..numberLength], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
                return false;
            text = text[numberLength..];

            var unitLength = 0;
            while (unitLength < text.Length && (char.IsAsciiLetter(text[unitLength]) || text[unitLength] == 'µ'))
                unitLength++;
            double? unitTicks = text[..unitLength] switch
            {
                "ns" => TimeSpan.TicksPerMicrosecond / 1000.0,
                "us" or "µs" => TimeSpan.TicksPerMicrosecond,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                "h" => TimeSpan.TicksPerHour,
                _ => null,
            };
            if (unitTicks is null) return false;
            ticks += value * unitTicks.Value;
            text = text[unitLength..];
        }

        if (ticks > TimeSpan.MaxValue.Ticks) return false;
        duration = TimeSpan.FromTicks((long)ticks);
        return true;
    }
}
