using Berth.CriServer.Configuration;

namespace Berth.CriServer.Tests;

public sealed class DurationParserTests
{
    [Theory]
    [InlineData("0", 0)]
    [InlineData("10s", 10_000)]
    [InlineData("250ms", 250)]
    [InlineData("1m30s", 90_000)]
    [InlineData("1.5h", 5_400_000)]
    [InlineData("2h45m", 9_900_000)]
    [InlineData("1500us", 1.5)]
    [InlineData("1500µs", 1.5)]
    [InlineData("2000000ns", 2)]
    public void Go_durations_parse(string text, double milliseconds)
    {
        Assert.True(DurationParser.TryParse(text, out var duration));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), duration);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("s")]
    [InlineData("10 s")]
    [InlineData("10d")]
    [InlineData("-5s")]
    [InlineData("1.2.3s")]
    public void Anything_else_is_rejected(string text)
    {
        Assert.False(DurationParser.TryParse(text, out _));
    }

    [Theory]
    [InlineData(0, "0")]
    [InlineData(90_000, "90s")]
    [InlineData(120_000, "2m")]
    [InlineData(250, "250ms")]
    [InlineData(1.5, "1500us")]
    public void Formatting_round_trips(double milliseconds, string expected)
    {
        var formatted = DurationParser.Format(TimeSpan.FromMilliseconds(milliseconds));
        Assert.Equal(expected, formatted);
        Assert.True(DurationParser.TryParse(formatted, out var parsed));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), parsed);
    }
}
