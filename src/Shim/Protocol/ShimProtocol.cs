using System.Buffers.Binary;
using System.Globalization;
using System.Text;

// berthd and berth-shim speak through a command line, one report line, a control socket, an attach socket and an
// exit file. This one source is compiled into both (the shim keeps no project references), so neither side can
// drift from the other; test/unit/Berth.Shim.Tests/ShimProtocolTests.cs round-trips every message.
namespace Berth.ShimProtocol;

/// <summary>The shim's files, relative to the bundle it works in (a unix socket path has 107 bytes at most).</summary>
internal static class ShimFiles
{
    public const string AttachSocket = "attach.sock";
    public const string ControlSocket = "control.sock";
    public const string ConsoleSocket = "console.sock";
    public const string InitPidFile = "init.pid";
    public const string RuntimeLog = "runtime.log";
    public const string ShimLog = "shim.log";
}

/// <summary>The command line of <c>berth-shim run</c>: one container to create and keep.</summary>
internal sealed record ShimCommandLine
{
    public const string Verb = "run";

    public required string Id { get; init; }
    public required string Bundle { get; init; }
    public required string Runtime { get; init; }
    public required string RuntimeRoot { get; init; }
    public required string ExitFile { get; init; }
    public string? LogPath { get; init; }
    public bool Tty { get; init; }
    public bool Stdin { get; init; }
    public bool StdinOnce { get; init; }

    /// <summary>The systemd cgroup driver: the runtime's create gets <c>--systemd-cgroup</c>.</summary>
    public bool SystemdCgroup { get; init; }

    /// <summary>
    /// A checkpoint's CRIU images: the container is restored from them (the runtime's <c>restore --detach</c>) instead
    /// of created, and runs once the shim reports; <see cref="RestoreWork"/> takes CRIU's log and work files.
    /// </summary>
    public string? RestoreFrom { get; init; }

    public string? RestoreWork { get; init; }

    /// <summary>The arguments after the binary, verb first; <see cref="Parse"/> takes what follows the verb.</summary>
    public List<string> ToArguments()
    {
        var args = new List<string> { Verb, "--id", Id, "--bundle", Bundle, "--runtime", Runtime, "--runtime-root", RuntimeRoot, "--exit-file", ExitFile };
        if (LogPath is { } log) args.AddRange(["--log", log]);
        if (Tty) args.Add("--tty");
        if (Stdin) args.Add("--stdin");
        if (StdinOnce) args.Add("--stdin-once");
        if (SystemdCgroup) args.Add("--systemd-cgroup");
        if (RestoreFrom is { } images) args.AddRange(["--restore-from", images, "--restore-work", RestoreWork ?? images]);
        return args;
    }

    /// <summary>What /proc/PID/cmdline of a container's shim starts with: how one is found without a PID on record.</summary>
    public static byte[] CmdlinePrefix(string shimBinary, string id) => Encoding.UTF8.GetBytes($"{shimBinary}\0{Verb}\0--id\0{id}\0");

    public static ShimCommandLine? Parse(IReadOnlyList<string> args, out string error)
    {
        string? id = null, bundle = null, runtime = null, root = null, exitFile = null, log = null, restoreFrom = null, restoreWork = null;
        bool tty = false, stdin = false, stdinOnce = false, systemdCgroup = false;
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] is "--tty" or "--stdin" or "--stdin-once" or "--systemd-cgroup")
            {
                (tty, stdin, stdinOnce, systemdCgroup) = args[i] switch
                {
                    "--tty" => (true, stdin, stdinOnce, systemdCgroup),
                    "--stdin" => (tty, true, stdinOnce, systemdCgroup),
                    "--stdin-once" => (tty, stdin, true, systemdCgroup),
                    _ => (tty, stdin, stdinOnce, true),
                };
                continue;
            }
            if (args[i] is not ("--id" or "--bundle" or "--runtime" or "--runtime-root" or "--exit-file" or "--log" or "--restore-from" or "--restore-work"))
            {
                error = $"unknown option {args[i]}";
                return null;
            }
            if (i + 1 >= args.Count)
            {
                error = $"{args[i]} needs a value";
                return null;
            }
            var value = args[i + 1];
            switch (args[i++])
            {
                case "--id": id = value; break;
                case "--bundle": bundle = value; break;
                case "--runtime": runtime = value; break;
                case "--runtime-root": root = value; break;
                case "--exit-file": exitFile = value; break;
                case "--restore-from": restoreFrom = value; break;
                case "--restore-work": restoreWork = value; break;
                default: log = value; break;
            }
        }
        if (id is null || bundle is null || runtime is null || root is null || exitFile is null)
        {
            error = "--id, --bundle, --runtime, --runtime-root and --exit-file are required";
            return null;
        }
        error = "";
        return new ShimCommandLine
        {
            Id = id, Bundle = bundle, Runtime = runtime, RuntimeRoot = root, ExitFile = exitFile,
            LogPath = string.IsNullOrEmpty(log) ? null : log, Tty = tty, Stdin = stdin, StdinOnce = stdinOnce, SystemdCgroup = systemdCgroup,
            RestoreFrom = restoreFrom, RestoreWork = restoreWork,
        };
    }
}

/// <summary>The command line of <c>berth-shim pause</c>, a pod's infra process; the sandbox ID lets berthd find it again.</summary>
internal static class PodInfraCommandLine
{
    public const string Verb = "pause";

    public static string[] ToArguments(string sandboxId) => [Verb, "--sandbox", sandboxId];

    public static byte[] CmdlinePrefix(string shimBinary, string sandboxId) => Encoding.UTF8.GetBytes($"{shimBinary}\0{Verb}\0--sandbox\0{sandboxId}\0");
}

/// <summary>
/// <c>berth-shim userns</c>: makes a pod's user namespace with its network, IPC and UTS namespaces inside it (and, with
/// <c>--pid</c>, the pod's infra as PID 1 of a PID namespace inside it too) for berthd to map and pin. The helper says
/// <c>child PID</c> once the namespaces exist; berthd writes the child's uid_map and gid_map and sends one line; with
/// <c>--pid</c> the helper then says <c>infra PID</c>; then <c>ready</c>. berthd pins the namespaces and closes the
/// helper's stdin, and it exits. Any failure is one <c>error MESSAGE</c> line, and the helper exits.
/// </summary>
internal static class UserNamespaceHelperProtocol
{
    public const string Verb = "userns";

    public static string[] ToArguments(string sandboxId, bool sharedPid) =>
        sharedPid ? [Verb, "--sandbox", sandboxId, "--pid"] : [Verb, "--sandbox", sandboxId];

    public const string Child = "child";
    public const string Infra = "infra";
    public const string Ready = "ready";

    /// <summary>One report line as (word, PID); the PID is 0 for <c>ready</c>, and the word is <c>error</c> with the message for a failure.</summary>
    public static (string Word, int Pid, string? Error) Parse(string? line)
    {
        if (line is null) return ("error", 0, "the helper exited without a report");
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        var word = space < 0 ? line : line[..space];
        if (word == "error") return (word, 0, space < 0 ? "" : line[(space + 1)..]);
        if (word == Ready && space < 0) return (word, 0, null);
        return word is Child or Infra && int.TryParse(line.AsSpan(space + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0
            ? (word, pid, null)
            : ("error", 0, $"unexpected report '{line}'");
    }
}

/// <summary>
/// The one line a shim writes on its stdout once runtime create is done: <c>created PID</c>, or <c>error MESSAGE</c>
/// when it failed (the shim has exited then).
/// </summary>
internal static class ShimReport
{
    /// <summary>The init PID, and how long the runtime's create took (µs), which berthd's trace shows apart from the shim's start.</summary>
    public static string Created(int initPid, long runtimeCreateMicros) =>
        $"created {initPid.ToString(CultureInfo.InvariantCulture)} {runtimeCreateMicros.ToString(CultureInfo.InvariantCulture)}\n";

    public static string Error(string message) => $"error {message.ReplaceLineEndings(" ")}\n";

    /// <summary>True with the init PID and create time for a created report; false with the shim's message, or null for no report at all.</summary>
    public static bool TryParse(string? line, out int initPid, out long runtimeCreateMicros, out string? error)
    {
        initPid = 0;
        runtimeCreateMicros = 0;
        error = null;
        if (line is null) return false;
        line = line.TrimEnd('\n');
        if (line.StartsWith("created ", StringComparison.Ordinal) && line[8..].Split(' ') is [var pid, var micros]
            && int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out initPid) && initPid > 0
            && long.TryParse(micros, NumberStyles.None, CultureInfo.InvariantCulture, out runtimeCreateMicros)) return true;
        initPid = 0;
        error = line.StartsWith("error ", StringComparison.Ordinal) ? line[6..] : null;
        return false;
    }
}

/// <summary>A request on the control socket: one line per connection, answered <c>ok</c> or <c>error MESSAGE</c>.</summary>
internal readonly record struct ShimControlRequest(ShimControlKind Kind, ushort Columns = 0, ushort Rows = 0)
{
    public const string Ok = "ok";

    public static ShimControlRequest Reopen => new(ShimControlKind.Reopen);

    public static ShimControlRequest Resize(ushort columns, ushort rows) => new(ShimControlKind.Resize, columns, rows);

    public string Format() => Kind == ShimControlKind.Reopen
        ? "reopen\n"
        : $"resize {Columns.ToString(CultureInfo.InvariantCulture)} {Rows.ToString(CultureInfo.InvariantCulture)}\n";

    public static ShimControlRequest? Parse(string line) => line.Trim().Split(' ') switch
    {
        ["reopen"] => Reopen,
        ["resize", var c, var r] when ushort.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out var columns)
                                      && ushort.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out var rows) => Resize(columns, rows),
        _ => null,
    };

    public static string Failed(string message) => $"error {message.ReplaceLineEndings(" ")}";

    /// <summary>Null for <c>ok</c>, else the shim's reason.</summary>
    public static string? ReplyError(string reply)
    {
        reply = reply.Trim();
        if (reply == Ok) return null;
        return reply.StartsWith("error ", StringComparison.Ordinal) ? reply[6..] : $"unexpected reply '{reply}'";
    }
}

internal enum ShimControlKind
{
    Reopen,
    Resize,
}

/// <summary>
/// The exit file: <c>{"exitCode":N,"exitedAt":UNIX_NANOSECONDS,"oomKilled":BOOL}</c>, written to a temporary name
/// (<see cref="TemporarySuffix"/>) and renamed, so a reader never sees half of one. <c>oomKilled</c>: the container's
/// cgroup counted an OOM kill while it ran (absent, from shims before it, is false).
/// </summary>
internal readonly record struct ShimExitStatus(int ExitCode, long ExitedAt, bool OomKilled = false)
{
    public const string TemporarySuffix = ".tmp";

    public string Format() =>
        $"{{\"exitCode\":{ExitCode.ToString(CultureInfo.InvariantCulture)},\"exitedAt\":{ExitedAt.ToString(CultureInfo.InvariantCulture)},\"oomKilled\":{(OomKilled ? "true" : "false")}}}\n";

    /// <summary>Null for a file that is not an exit status (truncated by a crash, or not the shim's).</summary>
    public static ShimExitStatus? Parse(string text) =>
        Number(text, "\"exitCode\":") is { } code && code is >= int.MinValue and <= int.MaxValue && Number(text, "\"exitedAt\":") is { } at
            ? new ShimExitStatus((int)code, at, text.Contains("\"oomKilled\":true", StringComparison.Ordinal))
            : null;

    private static long? Number(string text, string key)
    {
        var start = text.IndexOf(key, StringComparison.Ordinal);
        if (start < 0) return null;
        start += key.Length;
        var end = start;
        while (end < text.Length && (char.IsAsciiDigit(text[end]) || end == start && text[end] == '-')) end++;
        return long.TryParse(text.AsSpan(start, end - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : null;
    }
}

/// <summary>Output on the attach socket: frames of [stream][length, big-endian int32][bytes].</summary>
internal static class AttachFrame
{
    public const int HeaderLength = 5;
    public const byte Stdout = 1;
    public const byte Stderr = 2;

    public static void WriteHeader(Span<byte> header, byte stream, int length)
    {
        header[0] = stream;
        BinaryPrimitives.WriteInt32BigEndian(header[1..], length);
    }

    public static (byte Stream, int Length) ReadHeader(ReadOnlySpan<byte> header) => (header[0], BinaryPrimitives.ReadInt32BigEndian(header[1..]));
}
