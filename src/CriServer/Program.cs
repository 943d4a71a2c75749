using Berth.CriServer.Configuration;
using Berth.CriServer.Hosting;

namespace Berth.CriServer;

internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
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
}
