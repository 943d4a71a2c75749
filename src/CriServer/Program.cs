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
            if (args.Length > 0 && args[0] == "export") return await ExportCommand.RunAsync(args[1..]);
            if (args.Length > 0 && args[0] == "config") return await ConfigCommandAsync(args[1..]);
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

    /// <summary>
    /// <c>berthd config default</c>: the defaults as TOML with a comment per key, a config file to start from (as
    /// <c>containerd config default</c>). <c>berthd config dump</c>: the effective config, the file and its drop-ins
    /// merged with the flags given, as berthd would run with it.
    /// </summary>
    private static async Task<int> ConfigCommandAsync(string[] args)
    {
        switch (args)
        {
            case ["default"]:
                await Console.Out.WriteAsync(ConfigWriter.Write(new BerthConfig(), comments: true));
                return 0;
            case ["dump", .. var flags]:
                await Console.Out.WriteAsync(ConfigWriter.Write(ConfigLoader.Load(CommandLineOptions.Parse(flags)), comments: false));
                return 0;
            default:
                await Console.Error.WriteLineAsync("usage: berthd config default | berthd config dump [--config <path>] [flags]");
                return 2;
        }
    }

    private const int SigInt = 2;
    private static readonly nint SigDfl = 0;

    [DllImport("libc", EntryPoint = "signal")]
    private static extern nint signal(int signum, nint handler);
}
