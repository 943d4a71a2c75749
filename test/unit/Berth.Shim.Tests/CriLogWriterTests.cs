using System.Text;
using Berth.Shim.Logging;

namespace Berth.Shim.Tests;

/// <summary>The CRI log format as kubelet parses it: "&lt;timestamp&gt; &lt;stream&gt; &lt;F|P&gt; &lt;content&gt;\n".</summary>
public sealed class CriLogWriterTests
{
    private sealed class MemorySink : ILogSink
    {
        public readonly MemoryStream Bytes = new();

        public void Write(ReadOnlySpan<byte> entry) => Bytes.Write(entry);

        public void Dispose()
        {
        }
    }

    private static readonly DateTime Now = new DateTime(2026, 11, 23, 1, 2, 3, DateTimeKind.Utc).AddTicks(4_567_891);

    private const string Stamp = "2026-11-23T01:02:03.4567891Z";

    private readonly MemorySink _file = new();
    private readonly CriLogWriter _writer;

    public CriLogWriterTests() => _writer = new CriLogWriter(_file, () => Now);

    private string Log => Encoding.UTF8.GetString(_file.Bytes.ToArray());

    private static string[] Entries(string log) => log.Split('\n')[..^1];

    [Fact]
    public void Complete_lines_become_full_entries_with_the_stream_named()
    {
        _writer.Write(LogStream.Stdout, "hello\nworld\n"u8);
        _writer.Write(LogStream.Stderr, "oops\n"u8);
        Assert.Equal($"{Stamp} stdout F hello\n{Stamp} stdout F world\n{Stamp} stderr F oops\n", Log);
    }

    [Fact]
    public void A_line_split_across_reads_is_one_entry_once_its_newline_arrives()
    {
        _writer.Write(LogStream.Stdout, "hel"u8);
        Assert.Equal("", Log);
        _writer.Write(LogStream.Stdout, "lo\n"u8);
        Assert.Equal($"{Stamp} stdout F hello\n", Log);
    }

    [Fact]
    public void Empty_lines_are_kept()
    {
        _writer.Write(LogStream.Stdout, "\n\n"u8);
        Assert.Equal($"{Stamp} stdout F \n{Stamp} stdout F \n", Log);
    }

    [Fact]
    public void The_streams_keep_their_own_partial_lines()
    {
        _writer.Write(LogStream.Stdout, "out-"u8);
        _writer.Write(LogStream.Stderr, "err-"u8);
        _writer.Write(LogStream.Stderr, "done\n"u8);
        _writer.Write(LogStream.Stdout, "done\n"u8);
        Assert.Equal($"{Stamp} stderr F err-done\n{Stamp} stdout F out-done\n", Log);
    }

    [Fact]
    public void A_long_line_is_cut_into_partial_entries_of_16_KiB_ended_by_a_full_one()
    {
        var line = new string('a', CriLogWriter.MaxLineBytes) + new string('b', CriLogWriter.MaxLineBytes) + "ccc";
        _writer.Write(LogStream.Stdout, Encoding.ASCII.GetBytes(line + "\n"));
        var entries = Entries(Log);
        Assert.Equal(3, entries.Length);
        Assert.Equal($"{Stamp} stdout P {new string('a', CriLogWriter.MaxLineBytes)}", entries[0]);
        Assert.Equal($"{Stamp} stdout P {new string('b', CriLogWriter.MaxLineBytes)}", entries[1]);
        Assert.Equal($"{Stamp} stdout F ccc", entries[2]);
    }

    [Fact]
    public void A_line_of_exactly_16_KiB_stays_one_full_entry()
    {
        _writer.Write(LogStream.Stdout, Encoding.ASCII.GetBytes(new string('x', CriLogWriter.MaxLineBytes) + "\n"));
        Assert.Equal([$"{Stamp} stdout F {new string('x', CriLogWriter.MaxLineBytes)}"], Entries(Log));
    }

    [Fact]
    public void A_long_line_fed_in_small_reads_is_cut_the_same_way()
    {
        var bytes = Encoding.ASCII.GetBytes(new string('z', CriLogWriter.MaxLineBytes + 10) + "\n");
        foreach (var chunk in bytes.Chunk(1000)) _writer.Write(LogStream.Stderr, chunk);
        var entries = Entries(Log);
        Assert.Equal(2, entries.Length);
        Assert.StartsWith($"{Stamp} stderr P zzz", entries[0], StringComparison.Ordinal);
        Assert.Equal($"{Stamp} stderr F {new string('z', 10)}", entries[1]);
    }

    [Fact]
    public void A_last_line_without_newline_is_logged_full_when_the_stream_ends()
    {
        _writer.Write(LogStream.Stdout, "no newline"u8);
        _writer.Complete(LogStream.Stdout);
        _writer.Complete(LogStream.Stdout);
        Assert.Equal($"{Stamp} stdout F no newline\n", Log);
    }

    [Fact]
    public void Binary_bytes_are_copied_as_they_are()
    {
        _writer.Write(LogStream.Stdout, new byte[] { 0x00, 0xFF, 0x1B, (byte)'\r', 0x80, (byte)'\n' });
        var raw = _file.Bytes.ToArray();
        Assert.Equal(new byte[] { 0x00, 0xFF, 0x1B, (byte)'\r', 0x80, (byte)'\n' }, raw[^6..]);
        Assert.Equal(Stamp.Length + " stdout F ".Length + 6, raw.Length);
    }

    [Fact]
    public void Reopen_continues_in_the_new_file()
    {
        _writer.Write(LogStream.Stdout, "before\nhalf-"u8);
        var rotated = new MemorySink();
        _writer.Reopen(rotated);
        _writer.Write(LogStream.Stdout, "after\n"u8);
        Assert.Equal($"{Stamp} stdout F half-after\n", Encoding.UTF8.GetString(rotated.Bytes.ToArray()));
    }

    [Fact]
    public void Timestamps_parse_as_RFC3339_in_UTC()
    {
        _writer.Write(LogStream.Stdout, "x\n"u8);
        var stamp = Log.Split(' ')[0];
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 1, 2, 3, TimeSpan.Zero).AddTicks(4_567_891),
            DateTimeOffset.Parse(stamp, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData(1, 1, 1, 0, 0, 0, 0)]
    [InlineData(2024, 2, 29, 23, 59, 59, 9_999_999)]
    [InlineData(2026, 11, 23, 1, 2, 3, 4_567_891)]
    [InlineData(9999, 12, 31, 12, 0, 7, 10)]
    public void Timestamps_have_seven_fraction_digits_as_the_round_trip_format_does(
        int year, int month, int day, int hour, int minute, int second, int ticks)
    {
        var time = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(ticks);
        Assert.Equal(time.ToString("O", System.Globalization.CultureInfo.InvariantCulture), Rfc3339.Format(time));
    }
}
