using System.Buffers;
using System.Buffers.Text;
using Microsoft.Win32.SafeHandles;

namespace Berth.Runtime.Stats;

/// <summary>
/// Reads a cgroup's usage from cgroupfs. cgroup v1 and v2 lay out their files differently; both readers answer in
/// <see cref="CgroupSample"/> terms. Paths are the ones runc was given (<c>linux.cgroupsPath</c>, cgroupfs driver).
/// </summary>
public abstract class CgroupReader
{
    private const int FileBuffer = 8 * 1024;

    protected CgroupReader(string root) => Root = root.TrimEnd('/');

    /// <summary>Where cgroupfs is mounted, normally /sys/fs/cgroup; a fixture tree in tests.</summary>
    public string Root { get; }

    public static CgroupReader ForNode(bool cgroupV2, string root = "/sys/fs/cgroup") =>
        cgroupV2 ? new CgroupV2Reader(root) : new CgroupV1Reader(root);

    /// <summary>The cgroup's usage now, or null when the cgroup does not exist (any more).</summary>
    public abstract CgroupSample? Read(string cgroupPath);

    protected static long Now() => (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100;

    /// <summary>Reads a small pseudo-file into a pooled buffer and hands its bytes to <paramref name="parse"/>; null when absent.</summary>
    protected static T? ReadFile<T>(string path, ParseBytes<T> parse) where T : class
    {
        var buffer = ArrayPool<byte>.Shared.Rent(FileBuffer);
        try
        {
            var length = ReadAll(path, buffer);
            return length < 0 ? null : parse(buffer.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected delegate T? ParseBytes<T>(ReadOnlySpan<byte> content);

    /// <summary>A file holding one number (v2 also writes <c>max</c> for no limit, which gives null).</summary>
    protected static ulong? ReadNumber(string path)
    {
        Span<byte> buffer = stackalloc byte[64];
        var length = ReadAll(path, buffer);
        if (length <= 0) return null;
        return Utf8Parser.TryParse(buffer[..length].Trim("\n "u8), out ulong value, out _) ? value : null;
    }

    /// <summary>The value of <c>key value</c> in a flat-keyed file such as memory.stat or cpu.stat.</summary>
    protected static ulong? KeyedValue(ReadOnlySpan<byte> content, ReadOnlySpan<byte> key)
    {
        foreach (var line in Lines(content))
        {
            if (line.Length > key.Length && line.StartsWith(key) && line[key.Length] == (byte)' '
                && Utf8Parser.TryParse(line[(key.Length + 1)..], out ulong value, out _))
                return value;
        }
        return null;
    }

    /// <summary>The lines of a pseudo-file's content, without their newlines.</summary>
    protected static LineEnumerator Lines(ReadOnlySpan<byte> content) => new(content);

    protected ref struct LineEnumerator(ReadOnlySpan<byte> content)
    {
        private ReadOnlySpan<byte> _rest = content;

        public ReadOnlySpan<byte> Current { get; private set; }

        public readonly LineEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_rest.IsEmpty) return false;
            var end = _rest.IndexOf((byte)'\n');
            Current = end < 0 ? _rest : _rest[..end];
            _rest = end < 0 ? default : _rest[(end + 1)..];
            return true;
        }
    }

    /// <summary>The value of each <c>name=value</c> field of a space-separated line, by name.</summary>
    protected static bool TryField(ReadOnlySpan<byte> line, ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        foreach (var range in line.Split((byte)' '))
        {
            var field = line[range];
            if (field.Length > name.Length && field.StartsWith(name) && field[name.Length] == (byte)'=')
            {
                value = field[(name.Length + 1)..];
                return true;
            }
        }
        value = default;
        return false;
    }

    /// <summary>A PSI file: <c>some avg10=0.00 avg60=0.00 avg300=0.00 total=0</c>, and the same for <c>full</c>.</summary>
    protected static Pressure? ReadPressure(string path) => ReadFile(path, ParsePressure);

    internal static Pressure? ParsePressure(ReadOnlySpan<byte> content)
    {
        PressureData? some = null, full = null;
        foreach (var line in Lines(content))
        {
            if (line.StartsWith("some "u8)) some = ParsePressureLine(line);
            else if (line.StartsWith("full "u8)) full = ParsePressureLine(line);
        }
        return some is { } s ? new Pressure(s, full) : null;
    }

    // A field that is missing or does not parse reads as 0.
    private static PressureData ParsePressureLine(ReadOnlySpan<byte> line) => new(
        TryField(line, "total"u8, out var total) && Utf8Parser.TryParse(total, out ulong microseconds, out _) ? microseconds : 0,
        Average(line, "avg10"u8),
        Average(line, "avg60"u8),
        Average(line, "avg300"u8));

    private static double Average(ReadOnlySpan<byte> line, ReadOnlySpan<byte> name) =>
        TryField(line, name, out var text) && Utf8Parser.TryParse(text, out double value, out _) ? value : 0;

    /// <summary>The whole file, or -1 when it is missing (a cgroup removed meanwhile, or a controller not enabled).</summary>
    private static int ReadAll(string path, Span<byte> buffer)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
        using (handle)
        {
            var total = 0;
            try
            {
                // Pseudo-files have no size and may arrive in pieces; read until end of file or the buffer is full.
                int read;
                while (total < buffer.Length && (read = RandomAccess.Read(handle, buffer[total..], total)) > 0) total += read;
            }
            catch (IOException)
            {
                return -1;
            }
            return total;
        }
    }
}
