using System.CommandLine;
using Grpc.Core;

namespace Berth.Cli;

/// <summary>The options every command takes, and the one way a command reaches berthd and reports failure.</summary>
internal sealed class GlobalOptions
{
    private readonly Option<string?> _endpoint = new("--runtime-endpoint", "-r")
    {
        Description = $"CRI socket (default: ${CriConnection.EndpointVariable}, then {CriConnection.DefaultEndpoint})",
        Recursive = true,
    };

    private readonly Option<TimeSpan> _timeout = new("--timeout")
    {
        Description = "deadline of each CRI call, as hh:mm:ss (pulls and streams are not bounded by it)",
        DefaultValueFactory = _ => TimeSpan.FromSeconds(30),
        Recursive = true,
    };

    public void AddTo(RootCommand root)
    {
        root.Options.Add(_endpoint);
        root.Options.Add(_timeout);
    }

    /// <summary>
    /// Sets <paramref name="command"/>'s action: open the connection, run, and turn the failures an operator causes or
    /// meets (a bad argument, a gRPC status) into one line on stderr and exit status 1.
    /// </summary>
    public void SetAction(Command command, Func<ParseResult, CriConnection, CancellationToken, Task<int>> action)
    {
        command.SetAction(async (result, cancellationToken) =>
        {
            try
            {
                using var connection = CriConnection.Open(result.GetValue(_endpoint), result.GetValue(_timeout));
                return await action(result, connection, cancellationToken);
            }
            catch (CliException e)
            {
                await Console.Error.WriteLineAsync($"berth: {e.Message}");
                return e.ExitCode;
            }
            catch (RpcException e) when (Cause(e) is { } cause)
            {
                await Console.Error.WriteLineAsync($"berth: {cause.Message}");
                return 1;
            }
            catch (RpcException e)
            {
                await Console.Error.WriteLineAsync($"berth: {e.StatusCode}: {e.Status.Detail}");
                return 1;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return 130;
            }
        });
    }

    /// <summary>A connection failure of ours, raised inside the gRPC call: the operator's message, not the wrapping.</summary>
    private static CliException? Cause(Exception e)
    {
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
            if (inner is CliException cause) return cause;
        return null;
    }
}
