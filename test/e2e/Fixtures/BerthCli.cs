using System.Diagnostics;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>Runs the published <c>berth</c> against a test daemon's socket, as an operator would.</summary>
public static class BerthCli
{
    public static Task<(int ExitCode, string Output)> RunAsync(BerthDaemon daemon, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(TestEnvironment.BerthCli);
        info.ArgumentList.Add("-r");
        info.ArgumentList.Add("unix://" + daemon.SocketPath);
        foreach (var arg in args) info.ArgumentList.Add(arg);
        return RunAsync(info, stdin, timeout);
    }

    /// <summary>
    /// Runs a shell line on a terminal of its own (util-linux script's pty), where <c>$BERTH</c> is berth on the
    /// daemon's socket; the output is what the terminal showed, escapes and carriage returns included.
    /// </summary>
    public static Task<(int ExitCode, string Output)> RunOnTerminalAsync(BerthDaemon daemon, string line, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo("script") { ArgumentList = { "--quiet", "--flush", "--return", "--command", line, "/dev/null" } };
        info.Environment["BERTH"] = $"{TestEnvironment.BerthCli} -r unix://{daemon.SocketPath}";
        return RunAsync(info, stdin: null, timeout);
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(ProcessStartInfo info, string? stdin, TimeSpan? timeout)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.RedirectStandardInput = true;
        info.UseShellExecute = false;
        using var process = Process.Start(info)!;
        if (stdin is not null) await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{info.FileName} {string.Join(' ', info.ArgumentList)} did not exit in time:\n{await stdout}{await stderr}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
