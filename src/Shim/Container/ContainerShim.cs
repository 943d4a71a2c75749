using System.Diagnostics;
using System.Globalization;
using System.Text;
using Berth.Shim.Logging;
using Berth.Shim.Native;

namespace Berth.Shim.Container;

/// <summary>
/// One container's keeper, conmon-style. It detaches from berthd, becomes the subreaper, runs
/// <c>runc create</c> with pipes (or a pty received on the console socket) as the container's stdio, reports the
/// init PID on its stdout, then logs the container's output in the CRI format, feeds its stdin, serves attach
/// and control sockets, and when the init exits writes the exit file atomically and leaves. berthd restarts do
/// not touch it: everything berthd needs later is in files and sockets in the bundle.
/// </summary>
internal sealed unsafe class ContainerShim : IDisposable
{
    /// <summary>How long output may keep flowing after the init exits, from processes that still hold the pipes.</summary>
    private static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(2);

    private readonly ShimOptions _options;
    private readonly List<AttachClient> _attachClients = [];
    private CriLogWriter? _log;
    private int _stdinWrite = -1;

    // The container's stdin, non-blocking: while it holds bytes the container has not taken, attach clients are
    // not read (they wait, as a full pipe would make them), and the loop goes on serving output.
    private WriteBacklog? _stdin;
    private bool _stdinClosing;
    private int _console = -1;
    private bool _stdinClaimed;

    private ContainerShim(ShimOptions options) => _options = options;

    public static int Run(ShimOptions options)
    {
        using var shim = new ContainerShim(options);
        return shim.Run();
    }

    public void Dispose() => _log?.Dispose();

    private int Run()
    {
        _ = Libc.SetSid();
        _ = Libc.Prctl(Libc.PrSetChildSubreaper, 1, 0, 0, 0);
        Directory.SetCurrentDirectory(_options.Bundle);
        var devNull = Fd.OpenDevNull();
        // The shim's own diagnostics (and an unhandled exception's trace) go to a file in the bundle.
        var diagnostics = Libc.Open("shim.log", Libc.OWrOnly | 0x40 /* O_CREAT */ | 0x400 /* O_APPEND */ | Libc.OCloExec, 0x1A0);
        _ = Libc.Dup2(devNull, 0);
        if (diagnostics >= 0) _ = Libc.Dup2(diagnostics, 2);

        var reaper = new Reaper();
        var created = false;
        try
        {
            if (_options.LogPath is { } logPath)
                _log = new CriLogWriter(OpenLog(logPath));
            var (initPid, outputs) = Create(reaper, devNull);
            Report($"created {initPid.ToString(CultureInfo.InvariantCulture)}\n");
            created = true;
            _ = Libc.Dup2(devNull, 1);
            var exitCode = Serve(reaper, initPid, outputs);
            _log?.Dispose();
            WriteExitFile(exitCode);
            return 0;
        }
        catch (Exception e)
        {
            Fd.WriteText(2, $"{Rfc3339.Format(DateTime.UtcNow)} {e}\n");
            // Before the report, berthd is listening and undoes the container; after it, the exit file tells.
            if (!created) Report($"error {e.Message.ReplaceLineEndings(" ")}\n");
            else WriteExitFile(255);
            return 1;
        }
        finally
        {
            File.Delete(ShimOptions.AttachSocket);
            File.Delete(ShimOptions.ControlSocket);
        }
    }

    private static AppendOnlyFile OpenLog(string path) => new(path);

    /// <summary>Runs <c>runc create</c>; returns the init PID and the descriptors the container writes to.</summary>
    private (int InitPid, List<(int Fd, LogStream Stream)> Outputs) Create(Reaper reaper, int devNull)
    {
        var outputs = new List<(int, LogStream)>();
        int stdin = devNull, stdout = devNull, stderr = devNull;
        var consoleListener = -1;
        if (_options.Tty)
        {
            consoleListener = Fd.Listen(ShimOptions.ConsoleSocket);
        }
        else
        {
            var outPipe = Fd.Pipe();
            var errPipe = Fd.Pipe();
            (stdout, stderr) = (outPipe.Write, errPipe.Write);
            outputs.Add((outPipe.Read, LogStream.Stdout));
            outputs.Add((errPipe.Read, LogStream.Stderr));
            if (_options.Stdin)
            {
                var inPipe = Fd.Pipe();
                stdin = inPipe.Read;
                _stdinWrite = inPipe.Write;
            }
        }

        var args = new List<string>
        {
            "--root", _options.RuntimeRoot, "--log", Path.Combine(_options.Bundle, ShimOptions.RuntimeLog), "--log-format", "json",
            "create", "--bundle", _options.Bundle, "--pid-file", Path.Combine(_options.Bundle, ShimOptions.InitPidFile),
        };
        if (_options.Tty) args.AddRange(["--console-socket", Path.Combine(_options.Bundle, ShimOptions.ConsoleSocket)]);
        args.Add(_options.Id);
        File.Delete(ShimOptions.InitPidFile);
        var runtime = reaper.Spawn(_options.Runtime, args, stdin, stdout, stderr);
        // The container holds these now; the shim keeps only its own ends, so it sees end-of-file when the container's close.
        foreach (var fd in new[] { stdin, stdout, stderr })
        {
            if (fd != devNull) _ = Libc.Close(fd);
        }

        if (consoleListener >= 0)
        {
            _console = AcceptConsole(consoleListener, runtime, reaper);
            _ = Libc.Close(consoleListener);
            File.Delete(ShimOptions.ConsoleSocket);
            outputs.Add((_console, LogStream.Stdout));
            if (_options.Stdin) _stdinWrite = _console;
        }

        var code = reaper.WaitFor(runtime);
        if (code != 0) throw new IOException(RuntimeError(code));
        var initPid = int.Parse(Fd.ReadFile(ShimOptions.InitPidFile).AsSpan().Trim((byte)'\n'), CultureInfo.InvariantCulture);
        return (initPid, outputs);
    }

    /// <summary>Waits for runc to send the pty master, or to fail first.</summary>
    private static int AcceptConsole(int listener, int runtime, Reaper reaper)
    {
        var poll = new Libc.PollFd { Fd = listener, Events = Libc.PollIn };
        var waited = Stopwatch.StartNew();
        while (Libc.Poll(&poll, 1, 100) <= 0)
        {
            if (Libc.Kill(runtime, 0) != 0 || IsZombie(runtime) || waited.Elapsed > TimeSpan.FromMinutes(1))
            {
                var code = reaper.WaitFor(runtime);
                throw new IOException(RuntimeError(code));
            }
        }
        var connection = Fd.Accept(listener);
        if (connection < 0) throw Fd.Failure("accept on the console socket");
        try
        {
            return Fd.ReceiveFd(connection);
        }
        finally
        {
            _ = Libc.Close(connection);
        }
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = Fd.ReadFile($"/proc/{pid}/stat");
            return stat[stat.AsSpan().LastIndexOf((byte)')') + 2] == 'Z';
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>runc's own account of a failure: the last message of its JSON log.</summary>
    private static string RuntimeError(int code)
    {
        var message = $"the OCI runtime failed to create the container (exit code {code})";
        try
        {
            foreach (var line in Encoding.UTF8.GetString(Fd.ReadFile(ShimOptions.RuntimeLog)).Split('\n'))
            {
                var start = line.IndexOf("\"msg\":\"", StringComparison.Ordinal);
                if (start < 0 || !line.Contains("\"level\":\"error\"", StringComparison.Ordinal)) continue;
                start += 7;
                var end = line.IndexOf("\",\"", start, StringComparison.Ordinal);
                message = UnescapeJson(end < 0 ? line[start..] : line[start..end]);
            }
        }
        catch (IOException)
        {
        }
        return message;
    }

    /// <summary>Enough JSON string unescaping for runc's messages, without pulling a JSON or regex engine into the shim.</summary>
    private static string UnescapeJson(string text)
    {
        var result = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\' || i + 1 == text.Length)
            {
                result.Append(text[i]);
                continue;
            }
            var next = text[++i];
            result.Append(next switch { 'n' => ' ', 't' => ' ', _ => next });
        }
        return result.ToString();
    }

    /// <summary>The event loop: output, attach clients and control requests, until the init has exited and its output drained.</summary>
    private int Serve(Reaper reaper, int initPid, List<(int Fd, LogStream Stream)> outputs)
    {
        var attach = Fd.Listen(ShimOptions.AttachSocket);
        var control = Fd.Listen(ShimOptions.ControlSocket);
        var wake = Fd.Pipe();
        var exitCode = -1;
        reaper.Watch(initPid, code =>
        {
            Volatile.Write(ref exitCode, code);
            Fd.WriteAll(wake.Write, "x"u8);
        });

        if (_stdinWrite >= 0)
        {
            Fd.SetNonBlocking(_stdinWrite);
            _stdin = new WriteBacklog(_stdinWrite, 64 * 1024, socket: false);
        }
        var buffer = new byte[32 * 1024];
        var poll = new PollSet(4 + outputs.Count + 16);
        long? drainUntil = null;
        while (true)
        {
            // The order here is the order results are read in below.
            poll.Clear();
            poll.Add(wake.Read, Libc.PollIn);
            poll.Add(attach, Libc.PollIn);
            poll.Add(control, Libc.PollIn);
            foreach (var (fd, _) in outputs) poll.Add(fd, Libc.PollIn);
            var stdinBehind = _stdin is { IsEmpty: false };
            var polledClients = _attachClients.Count;
            foreach (var client in _attachClients)
            {
                // Input is not read while the container's stdin is behind; an input-ended client is watched for
                // its hangup only (reported whatever the events).
                var events = (short)((client.InputEnded || stdinBehind ? 0 : Libc.PollIn) | (client.Output.IsEmpty ? 0 : Libc.PollOut));
                poll.Add(client.Fd, events);
            }
            if (stdinBehind) poll.Add(_stdinWrite, Libc.PollOut);

            if (drainUntil is { } until && (outputs.Count == 0 || Stopwatch.GetTimestamp() >= until)) break;
            var timeout = drainUntil is { } deadline ? Math.Max(0, (int)Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline).TotalMilliseconds) + 1 : -1;
            if (poll.Wait(timeout) <= 0) continue;

            var position = 0;
            if (poll.Returned(position++) != 0)
            {
                _ = Fd.Read(wake.Read, buffer);
                drainUntil = Stopwatch.GetTimestamp() + (long)(DrainTime.TotalSeconds * Stopwatch.Frequency);
            }
            if (poll.Returned(position++) != 0 && Fd.Accept(attach, nonBlocking: true) is var newClient and >= 0) Admit(newClient);
            if (poll.Returned(position++) != 0 && Fd.Accept(control) is var request and >= 0) HandleControl(request);
            position = ServeOutputs(poll, position, outputs, buffer);
            position = ServeAttachClients(poll, position, polledClients, buffer);
            if (stdinBehind && poll.Returned(position) != 0)
            {
                if (!_stdin!.Flush()) _stdinClosing = true;
                if (_stdinClosing) CloseStdin();
            }
        }

        foreach (var (fd, stream) in outputs) _log?.Complete(stream);
        for (var c = _attachClients.Count - 1; c >= 0; c--)
        {
            if (_attachClients[c].Dropped) Drop(c);
        }
        FlushAttachClients(DrainTime);
        while (_attachClients.Count > 0) Drop(_attachClients.Count - 1);
        return Volatile.Read(ref exitCode);
    }

    /// <summary>Reads the container's ready outputs into the log and the clients; an output at its end is completed and removed.</summary>
    private int ServeOutputs(PollSet poll, int position, List<(int Fd, LogStream Stream)> outputs, byte[] buffer)
    {
        for (var o = 0; o < outputs.Count; position++)
        {
            if (poll.Returned(position) == 0)
            {
                o++;
                continue;
            }
            var (fd, stream) = outputs[o];
            var read = Fd.Read(fd, buffer);
            if (read != 0)
            {
                if (read > 0) Output(stream, buffer.AsSpan(0, read));
                o++;
                continue;
            }
            _log?.Complete(stream);
            if (fd != _console) _ = Libc.Close(fd);
            outputs.RemoveAt(o);
        }
        return position;
    }

    /// <summary>
    /// Sends the polled clients their backlog and takes their input. Clients accepted in this round come after
    /// the polled ones and wait for the next.
    /// </summary>
    private int ServeAttachClients(PollSet poll, int position, int polledClients, byte[] buffer)
    {
        for (int seen = 0, c = 0; seen < polledClients; seen++, position++)
        {
            var client = _attachClients[c];
            var revents = poll.Returned(position);
            if (client.Dropped || (revents & Libc.PollOut) != 0 && !client.Output.Flush() || client.InputEnded && (revents & ~Libc.PollOut) != 0)
            {
                // Gone: a failed send, too far behind, or the hangup of a client whose input had ended.
                Drop(c);
                continue;
            }
            c++;
            if ((revents & ~Libc.PollOut) == 0) continue;
            var read = Fd.Read(client.Fd, buffer);
            if (read > 0)
            {
                Stdin(buffer.AsSpan(0, read));
            }
            else if (read == 0)
            {
                // End of the client's input: it may still be reading output, so it stays until it hangs up.
                client.InputEnded = true;
                if (_options.StdinOnce && _stdinClaimed) CloseStdin();
            }
        }
        return position;
    }

    /// <summary>Attach clients served at once: each holds a socket and up to 1 MiB of backlog here.</summary>
    internal const int MaxAttachClients = 16;

    /// <summary>A new attach client, or, past <see cref="MaxAttachClients"/>, a closed connection and a line in shim.log.</summary>
    private void Admit(int client)
    {
        if (_attachClients.Count < MaxAttachClients)
        {
            _attachClients.Add(new AttachClient(client));
            return;
        }
        _ = Libc.Close(client);
        Fd.WriteText(2, $"{Rfc3339.Format(DateTime.UtcNow)} attach client refused: {MaxAttachClients} are attached already\n");
    }

    /// <summary>The container is done: clients that are behind get up to <paramref name="limit"/> to take the rest.</summary>
    private void FlushAttachClients(TimeSpan limit)
    {
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < limit)
        {
            var behind = _attachClients.FindIndex(client => !client.Output.IsEmpty);
            if (behind < 0) return;
            var poll = new Libc.PollFd { Fd = _attachClients[behind].Fd, Events = Libc.PollOut };
            if (Libc.Poll(&poll, 1, 100) > 0 && !_attachClients[behind].Output.Flush()) Drop(behind);
        }
    }

    private void Drop(int index)
    {
        _ = Libc.Close(_attachClients[index].Fd);
        _attachClients.RemoveAt(index);
    }

    /// <summary>Output goes to the log and to every attached client, framed as [stream][length, big-endian][bytes].</summary>
    private void Output(LogStream stream, ReadOnlySpan<byte> data)
    {
        _log?.Write(stream, data);
        if (_attachClients.Count == 0) return;
        Span<byte> header = stackalloc byte[5];
        header[0] = stream == LogStream.Stdout ? (byte)1 : (byte)2;
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header[1..], data.Length);
        for (var c = 0; c < _attachClients.Count; c++)
        {
            var client = _attachClients[c];
            if (client.Dropped || client.Output.Write(header, data)) continue;
            if (client.Output.Overflowed)
                Fd.WriteText(2, $"{Rfc3339.Format(DateTime.UtcNow)} attach client dropped: more than {AttachClient.MaxBacklog} bytes of output behind\n");
            // Removed by the loop, whose poll results are still matched to the list by position.
            client.Dropped = true;
        }
    }

    /// <summary>What attached clients type goes to the container's stdin; with stdin_once the first client's end closes it.</summary>
    private void Stdin(ReadOnlySpan<byte> data)
    {
        if (_stdin is null || _stdinClosing) return;
        _stdinClaimed = true;
        if (_stdin.Write(data, [])) return;
        // The container closed its stdin (or, never, fell 64 KiB behind one read): nothing more goes in.
        _stdinClosing = true;
        CloseStdin();
    }

    /// <summary>Closes the container's stdin once what it was sent is in the pipe (at once when the pipe is gone).</summary>
    private void CloseStdin()
    {
        if (_stdin is null || _stdinWrite == _console) return;
        _stdinClosing = true;
        if (!_stdin.IsEmpty && _stdin.Flush() && !_stdin.IsEmpty) return;
        _ = Libc.Close(_stdinWrite);
        _stdinWrite = -1;
        _stdin = null;
    }

    /// <summary>One request per connection, one line each: <c>reopen</c> or <c>resize COLUMNS ROWS</c>; answered <c>ok</c> or <c>error …</c>.</summary>
    private void HandleControl(int connection)
    {
        try
        {
            var buffer = new byte[256];
            var length = 0;
            var poll = new Libc.PollFd { Fd = connection, Events = Libc.PollIn };
            while (length < buffer.Length && Array.IndexOf(buffer, (byte)'\n', 0, length) < 0 && Libc.Poll(&poll, 1, 1000) > 0)
            {
                var read = Fd.Read(connection, buffer.AsSpan(length));
                if (read <= 0) break;
                length += read;
            }
            var words = Encoding.UTF8.GetString(buffer, 0, length).Trim().Split(' ');
            var reply = words switch
            {
                ["reopen"] => Reopen(),
                ["resize", var columns, var rows] when ushort.TryParse(columns, out var c) && ushort.TryParse(rows, out var r) => Resize(c, r),
                _ => "error unknown request",
            };
            Fd.WriteAll(connection, Encoding.UTF8.GetBytes(reply + "\n"));
        }
        catch (IOException)
        {
        }
        finally
        {
            _ = Libc.Close(connection);
        }
    }

    private string Reopen()
    {
        if (_log is null || _options.LogPath is null) return "ok";
        try
        {
            _log.Reopen(OpenLog(_options.LogPath));
            return "ok";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"error {e.Message}";
        }
    }

    private string Resize(ushort columns, ushort rows)
    {
        if (_console < 0) return "error the container has no terminal";
        var size = new Libc.WinSize { Columns = columns, Rows = rows };
        return Libc.Ioctl(_console, Libc.TiocSWinSz, &size) == 0 ? "ok" : $"error ioctl TIOCSWINSZ: errno {Libc.LastError}";
    }

    private static void Report(string line)
    {
        try
        {
            Fd.WriteAll(1, Encoding.UTF8.GetBytes(line));
        }
        catch (IOException)
        {
            // berthd is gone; the exit file still tells.
        }
    }

    /// <summary>Written to a temporary name and renamed, so berthd's watch never sees half a file.</summary>
    private void WriteExitFile(int exitCode)
    {
        var exitedAt = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        Fd.WriteFileAtomically(_options.ExitFile, Encoding.UTF8.GetBytes(
            $"{{\"exitCode\":{exitCode.ToString(CultureInfo.InvariantCulture)},\"exitedAt\":{exitedAt.ToString(CultureInfo.InvariantCulture)}}}\n"));
    }
}
