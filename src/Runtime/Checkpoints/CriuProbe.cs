using CliWrap;
using CliWrap.Buffered;

namespace Berth.Runtime.Checkpoints;

/// <summary>
/// Whether CRIU can checkpoint on this node: <c>criu check</c>, asked once and kept when it says yes (a kernel does
/// not learn new tricks while berthd runs); a refusal is asked again next time, after an operator may have installed it.
/// </summary>
internal static class CriuProbe
{
    private static Task<string?>? _verdict;

    /// <summary>Null when CRIU works here; otherwise what <c>criu check</c> said, or that there is no criu.</summary>
    public static async Task<string?> WhyNotAsync()
    {
        var verdict = await (_verdict ??= CheckAsync());
        if (verdict is not null) _verdict = null;
        return verdict;
    }

    private static async Task<string?> CheckAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var result = await Cli.Wrap("criu").WithArguments(["check"]).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(timeout.Token);
            var output = (result.StandardError + result.StandardOutput).Trim();
            // criu check ends with "Looks good." when the kernel has what dump and restore need.
            if (result.ExitCode == 0 && output.Contains("Looks good", StringComparison.Ordinal)) return null;
            var errors = output.Split('\n').Where(l => l.StartsWith("Error", StringComparison.Ordinal)).ToList();
            return $"criu check failed on this kernel ({Environment.OSVersion.Version}): {string.Join("; ", errors.Count > 0 ? errors.TakeLast(3) : [output])}";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "CRIU is not installed (no criu in PATH); the OCI runtime checkpoints through it";
        }
        catch (OperationCanceledException)
        {
            return "criu check did not answer within 30 s";
        }
    }
}
