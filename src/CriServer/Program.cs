using System.Runtime.InteropServices;
using Berth.CriServer.Configuration;
using Berth.CriServer.Hosting;

namespace Berth.CriServer;

internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        // A berthd started in the background of a non-interactive shell inherits SIGINT as ignored, and .NET keeps an
        // inherited SIG_IGN. Reset it before the runtime reads it, so Ctrl-C and `kill -INT` stop berthd as SIGTERM does.
        signal(SigInt, SigDfl);
        BerthConfig config;
        try
        {
            if (args.Length > 0 && args[0] == "import") return await ImportCommand.RunAsync(args[1..]);
            var options = CommandLineOptions.Parse(args);
            if (options.Help)
            {
                Console.Out.WriteLine(CommandLineOptions.Usage);
                return 0;
            }
            if (options.Version)
            {
                Console.Out.WriteLine($"berthd {BuildInfo.Version} (CRI {BuildInfo.CriApiVersion})");
                return 0;
            }
            config = ConfigLoader.Load(options);
            StateDirectories.Prepare(config);
            SocketGuard.Claim(config.Grpc.Socket);
        }
        catch (ConfigException e)
        {
            await Console.Error.WriteLineAsync($"berthd: {e.Message}");
            return 2;
        }

        return await BerthHost.RunAsync(config);
    }

    private const int SigInt = 2;
    private static readonly nint SigDfl = 0;

    [DllImport("libc", EntryPoint = "signal")]
    private static extern nint signal(int signum, nint handler);
}
