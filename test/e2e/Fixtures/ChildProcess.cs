using System.Diagnostics;
using System.Text;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>Starts a daemon for a test with stdout and stderr collected into one log.</summary>
internal static class ChildProcess
{
    public static (Process Process, StringBuilder Output) Start(string binary, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        var output = new StringBuilder();
        var process = new Process { StartInfo = info };
        DataReceivedEventHandler append = (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
        };
        process.OutputDataReceived += append;
        process.ErrorDataReceived += append;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return (process, output);
    }
}
