namespace Berth.Shim.Logging;

/// <summary>Which of the container's output streams a log entry came from.</summary>
internal enum LogStream
{
    Stdout,
    Stderr,
}

/// <summary>
/// Writes container output in the CRI log format that kubelet reads:
/// <c>&lt;RFC 3339 UTC timestamp&gt; stdout|stderr F|P &lt;bytes&gt;\n</c>. A line longer than
/// <see cref="MaxLineBytes"/> is cut into P (partial) entries ended by an F (full) one; bytes are copied as they
/// are, binary included, and only '\n' ends a line. Each entry leaves in one write, so the entries of the two
/// streams never interleave. Thread-safe; no allocation per entry.
/// </summary>
internal sealed class CriLogWriter : IDisposable
{
    public const int MaxLineBytes = 16 * 1024;

    // "2026-11-23T01:23:45.1234567Z stdout F " is 38 bytes.
    private const int PrefixBytes = 38;

    private readonly Lock _lock = new();
    private readonly Func<DateTime> _utcNow;
    // The buffers are left unzeroed (each byte is written before it is read), so a container that logs little
    // never touches most of their pages: zeroing them cost every shim 48 KiB of private memory.
    private readonly byte[] _entry = GC.AllocateUninitializedArray<byte>(PrefixBytes + MaxLineBytes + 1);
    private readonly PendingLine _stdout = new();
    private readonly PendingLine _stderr = new();
    private ILogSink _output;

    public CriLogWriter(ILogSink output, Func<DateTime>? utcNow = null)
    {
        _output = output;
        _utcNow = utcNow ?? (static () => DateTime.UtcNow);
    }

    /// <summary>Takes bytes the container wrote; complete lines are logged at once, the rest waits for its end.</summary>
    public void Write(LogStream stream, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            var pending = stream == LogStream.Stdout ? _stdout : _stderr;
            while (!data.IsEmpty)
            {
                var newline = data.IndexOf((byte)'\n');
                var chunk = newline < 0 ? data : data[..newline];
                Append(stream, pending, chunk);
                if (newline < 0) break;
                Emit(stream, 'F', pending);
                data = data[(newline + 1)..];
            }
        }
    }

    /// <summary>The stream ended: a last line without its newline is logged as full, as containerd does.</summary>
    public void Complete(LogStream stream)
    {
        lock (_lock)
        {
            var pending = stream == LogStream.Stdout ? _stdout : _stderr;
            if (pending.Count > 0) Emit(stream, 'F', pending);
        }
    }

    /// <summary>Switches to a new file (ReopenContainerLog, after kubelet rotated the old one away).</summary>
    public void Reopen(ILogSink output)
    {
        lock (_lock)
        {
            _output.Dispose();
            _output = output;
        }
    }

    public void Dispose()
    {
        lock (_lock) _output.Dispose();
    }

    private void Append(LogStream stream, PendingLine pending, ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            // Only a line that goes on past a full buffer is cut: exactly MaxLineBytes then '\n' stays one F entry.
            if (pending.Count == MaxLineBytes) Emit(stream, 'P', pending);
            var take = Math.Min(MaxLineBytes - pending.Count, bytes.Length);
            bytes[..take].CopyTo(pending.Buffer.AsSpan(pending.Count));
            pending.Count += take;
            bytes = bytes[take..];
        }
    }

    private void Emit(LogStream stream, char tag, PendingLine pending)
    {
        var entry = _entry.AsSpan();
        var length = Rfc3339.Write(_utcNow(), entry);
        entry[length++] = (byte)' ';
        var name = stream == LogStream.Stdout ? "stdout"u8 : "stderr"u8;
        name.CopyTo(entry[length..]);
        length += name.Length;
        entry[length++] = (byte)' ';
        entry[length++] = (byte)tag;
        entry[length++] = (byte)' ';
        pending.Buffer.AsSpan(0, pending.Count).CopyTo(entry[length..]);
        length += pending.Count;
        entry[length++] = (byte)'\n';
        pending.Count = 0;
        try
        {
            _output.Write(entry[..length]);
        }
        catch (IOException)
        {
            // A full disk or a vanished file must not stall the container: its output is dropped, not blocked on.
        }
    }

    private sealed class PendingLine
    {
        public readonly byte[] Buffer = GC.AllocateUninitializedArray<byte>(MaxLineBytes);
        public int Count;
    }
}
