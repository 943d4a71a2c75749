namespace Berth.Cli;

/// <summary>A failure to report to the operator as one line, with exit status 1 (or <see cref="ExitCode"/>).</summary>
internal sealed class CliException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
