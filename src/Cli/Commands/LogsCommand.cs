using System.CommandLine;
using System.Text;
using Berth.Cri.V1;

namespace Berth.Cli.Commands;

/// <summary>
/// <c>berth logs [-f] [--tail N] [--timestamps] &lt;container&gt;</c>: the container's CRI log file (its path from
/// ContainerStatus), decoded: each record is <c>&lt;RFC3339Nano&gt; stdout|stderr P|F &lt;text&gt;</c>, and P records
/// are pieces of one line. Like crictl, it reads the file on this node.
/// </summary>
internal static class LogsCommand
{
    public static Command Create(GlobalOptions global)
    {
        var container = new Argument<string>("container") { Description = "container ID, ID prefix or name" };
        var follow = new Option<bool>("--follow", "-f") { Description = "keep printing until the container exits" };
        var tail = new Option<int>("--tail") { Description = "only the last N lines", DefaultValueFactory = _ => -1 };
        var timestamps = new Option<bool>("--timestamps", "-t") { Description = "print each line's timestamp" };
        var command = new Command("logs", "print a container's logs") { container, follow, tail, timestamps };
        global.SetAction(command, async (result, cri, cancellationToken) =>
        {
            var id = (await Resolve.ContainerAsync(cri, result.GetValue(container)!, cancellationToken)).Id;
            var status = await cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id }, deadline: cri.Deadline, cancellationToken: cancellationToken);
            var path = status.Status.LogPath;
            if (path.Length == 0) throw new CliException($"container {ContainerCommands.Short(id)} has no log file");
            var printer = new LogPrinter(result.GetValue(timestamps));
            await using var file = OpenLog(path);
            using var reader = new StreamReader(file, Encoding.UTF8);
            var lines = new List<string>();
            while (await reader.ReadLineAsync(cancellationToken) is { } line) lines.Add(line);
            var count = result.GetValue(tail);
            foreach (var line in count >= 0 ? lines.TakeLast(count) : lines) printer.Print(line);
            if (!result.GetValue(follow)) return 0;
            while (!cancellationToken.IsCancellationRequested)
            {
                if (await reader.ReadLineAsync(cancellationToken) is { } line)
                {
                    printer.Print(line);
                    continue;
                }
                var state = (await cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id }, deadline: cri.Deadline, cancellationToken: cancellationToken)).Status.State;
                if (state != ContainerState.ContainerRunning)
                {
                    // The shim may still be writing the last lines.
                    while (await reader.ReadLineAsync(cancellationToken) is { } last) printer.Print(last);
                    return 0;
                }
                await Task.Delay(200, cancellationToken);
            }
            return 0;
        });
        return command;
    }

    private static FileStream OpenLog(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (IOException e)
        {
            throw new CliException($"can't read the log {path}: {e.Message}");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException($"can't read the log {path}: {e.Message}");
        }
    }
}

/// <summary>Turns CRI log records back into the container's output lines.</summary>
internal sealed class LogPrinter(bool timestamps)
{
    private readonly StringBuilder _pendingOut = new();
    private readonly StringBuilder _pendingErr = new();

    public void Print(string record)
    {
        if (!LogRecord.TryParse(record, out var parsed)) return;
        var pending = parsed.Stderr ? _pendingErr : _pendingOut;
        if (pending.Length == 0 && timestamps) pending.Append(parsed.Timestamp).Append(' ');
        pending.Append(parsed.Text);
        if (parsed.Partial) return;
        var output = parsed.Stderr ? Console.Error : Console.Out;
        output.WriteLine(pending.ToString());
        output.Flush();
        pending.Clear();
    }
}

internal readonly record struct LogRecord(string Timestamp, bool Stderr, bool Partial, string Text)
{
    public static bool TryParse(string record, out LogRecord parsed)
    {
        parsed = default;
        var first = record.IndexOf(' ', StringComparison.Ordinal);
        if (first < 0) return false;
        var second = record.IndexOf(' ', first + 1);
        if (second < 0) return false;
        var stream = record.AsSpan(first + 1, second - first - 1);
        if (stream is not ("stdout" or "stderr")) return false;
        var third = record.IndexOf(' ', second + 1);
        var tag = third < 0 ? record.AsSpan(second + 1) : record.AsSpan(second + 1, third - second - 1);
        parsed = new LogRecord(record[..first], stream is "stderr", tag.StartsWith("P"), third < 0 ? "" : record[(third + 1)..]);
        return true;
    }
}
