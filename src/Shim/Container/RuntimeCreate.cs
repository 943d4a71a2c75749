using System.Diagnostics;
using System.Globalization;
using System.Text;
using Berth.Native;
using Berth.Shim.Logging;
using Berth.Shim.Native;
using Berth.ShimProtocol;

namespace Berth.Shim.Container;

/// <summary>
/// What <c>runc create</c> left the shim: the init PID, the descriptors the container writes to, the shim's end of
/// the container's stdin (-1 for none) and the terminal's master (-1 without a terminal; it is stdin too then).
/// </summary>
internal sealed record CreatedContainer(int InitPid, List<(int Fd, LogStream Stream)> Outputs, int Stdin, int Console);

/// <summary>Runs the OCI runtime's create with pipes, or a pty received on the console socket, as the container's stdio.</summary>
internal static unsafe class RuntimeCreate
{
    public static CreatedContainer Run(ShimCommandLine options, Reaper reaper, int devNull)
    {
        var outputs = new List<(int, LogStream)>();
        int stdin = devNull, stdout = devNull, stderr = devNull;
        int stdinWrite = -1, console = -1, consoleListener = -1;
        if (options.Tty)
        {
            consoleListener = Fd.Listen(ShimFiles.ConsoleSocket);
        }
        else
        {
            var outPipe = Fd.Pipe();
            var errPipe = Fd.Pipe();
            (stdout, stderr) = (outPipe.Write, errPipe.Write);
            outputs.Add((outPipe.Read, LogStream.Stdout));
            outputs.Add((errPipe.Read, LogStream.Stderr));
            if (options.Stdin)
            {
                var inPipe = Fd.Pipe();
                stdin = inPipe.Read;
                stdinWrite = inPipe.Write;
            }
        }

        var args = new List<string>
        {
            "--root", options.RuntimeRoot, "--log", Path.Combine(options.Bundle, ShimFiles.RuntimeLog), "--log-format", "json",
        };
        if (options.SystemdCgroup) args.Add("--systemd-cgroup");
        // A restore both creates and starts: CRIU brings the checkpointed processes back, and their stdio, pipes at the
        // checkpoint, are these pipes now (runc hands the runtime's own stdio to CRIU for them).
        args.AddRange(options.RestoreFrom is { } images
            ? ["restore", "--detach", "--image-path", images, "--work-path", options.RestoreWork ?? images]
            : ["create"]);
        args.AddRange(["--bundle", options.Bundle, "--pid-file", Path.Combine(options.Bundle, ShimFiles.InitPidFile)]);
        if (options.Tty) args.AddRange(["--console-socket", Path.Combine(options.Bundle, ShimFiles.ConsoleSocket)]);
        args.Add(options.Id);
        File.Delete(ShimFiles.InitPidFile);
        var runtime = reaper.Spawn(options.Runtime, args, stdin, stdout, stderr);
        // The container holds these now; the shim keeps only its own ends, so it sees end-of-file when the container's close.
        foreach (var fd in new[] { stdin, stdout, stderr })
        {
            if (fd != devNull) _ = Descriptors.Close(fd);
        }

        if (consoleListener >= 0)
        {
            console = AcceptConsole(consoleListener, runtime, reaper);
            _ = Descriptors.Close(consoleListener);
            File.Delete(ShimFiles.ConsoleSocket);
            outputs.Add((console, LogStream.Stdout));
            if (options.Stdin) stdinWrite = console;
        }

        var code = reaper.WaitFor(runtime);
        if (code != 0) throw new IOException(RuntimeError(code));
        var initPid = int.Parse(Fd.ReadFile(ShimFiles.InitPidFile).AsSpan().Trim((byte)'\n'), CultureInfo.InvariantCulture);
        return new CreatedContainer(initPid, outputs, stdinWrite, console);
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
            _ = Descriptors.Close(connection);
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
        var message = $"the OCI runtime failed to create or restore the container (exit code {code})";
        try
        {
            foreach (var line in Encoding.UTF8.GetString(Fd.ReadFile(ShimFiles.RuntimeLog)).Split('\n'))
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
}
