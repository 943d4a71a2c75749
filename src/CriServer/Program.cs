using System.CommandLine;
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
        var flags = new DaemonFlags();
        var root = new RootCommand("berthd serves the Kubernetes CRI v1 (RuntimeService and ImageService) on a unix socket.");
        flags.AddTo(root);
        // berthd's own --version line, which packaging reads: "berthd <version> (CRI v1)".
        var version = root.Options.OfType<VersionOption>().Single();
        version.Action = new VersionAction();
        root.SetAction((result, _) => Guarded(() => ServeAsync(flags.Read(result))));
        root.Subcommands.Add(Import(flags));
        root.Subcommands.Add(Export(flags));
        root.Subcommands.Add(Config(flags));
        return await root.Parse(args).InvokeAsync();
    }

    private static async Task<int> ServeAsync(CommandLineOptions options)
    {
        var config = ConfigLoader.Load(options);
        StateDirectories.Prepare(config);
        SocketGuard.Claim(config.Grpc.Socket);
        if (config.Nri is { Enable: true, DisableConnections: false }) SocketGuard.Claim(config.Nri.SocketPath, "nri.socket_path");
        return await BerthHost.RunAsync(config);
    }

    private static Command Import(DaemonFlags flags)
    {
        var archive = new Argument<string>("archive") { Description = "an OCI image layout (a directory, or a tar or tar.gz of one) or a docker save archive" };
        var name = new Option<string?>("--name") { Description = "name the image(s) in the archive, e.g. registry.k8s.io/pause:3.10", HelpName = "image" };
        var command = new Command("import", "import every named image of an archive into the image store, for air-gapped nodes; run it while berthd is stopped") { archive, name };
        command.SetAction((result, _) => Guarded(() => ImportCommand.RunAsync(flags.Read(result), result.GetValue(archive)!, result.GetValue(name))));
        return command;
    }

    private static Command Export(DaemonFlags flags)
    {
        var image = new Argument<string>("image") { Description = "the image, by name, digest or ID" };
        var file = new Argument<string>("file") { Description = "the tar to write" };
        var command = new Command("export", "write an image as an OCI image layout tar (with docker's manifest.json); berthd may be running") { image, file };
        command.SetAction((result, _) => Guarded(() => ExportCommand.RunAsync(flags.Read(result), result.GetValue(image)!, result.GetValue(file)!)));
        return command;
    }

    /// <summary>
    /// <c>berthd config default</c>: the defaults as TOML with a comment per key, a config file to start from (as
    /// <c>containerd config default</c>). <c>berthd config dump</c>: the effective config, the file and its drop-ins
    /// merged with the flags given, as berthd would run with it.
    /// </summary>
    private static Command Config(DaemonFlags flags)
    {
        var defaults = new Command("default", "print the default config, a comment per key");
        defaults.SetAction((_, _) => Guarded(async () =>
        {
            await Console.Out.WriteAsync(ConfigWriter.Write(new BerthConfig(), comments: true));
            return 0;
        }));
        var dump = new Command("dump", "print the effective config: the file, its config.d drop-ins and the flags");
        dump.SetAction((result, _) => Guarded(async () =>
        {
            await Console.Out.WriteAsync(ConfigWriter.Write(ConfigLoader.Load(flags.Read(result)), comments: false));
            return 0;
        }));
        return new Command("config", "print berthd's config") { defaults, dump };
    }

    /// <summary>A config mistake is one line naming the file, key or flag, and exit status 2.</summary>
    private static async Task<int> Guarded(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (ConfigException e)
        {
            await Console.Error.WriteLineAsync($"berthd: {e.Message}");
            return 2;
        }
    }

    private sealed class VersionAction : System.CommandLine.Invocation.SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            Console.Out.WriteLine($"berthd {BuildInfo.Version} (CRI {BuildInfo.CriApiVersion})");
            return 0;
        }
    }

    private const int SigInt = 2;
    private static readonly nint SigDfl = 0;

    [DllImport("libc", EntryPoint = "signal")]
    private static extern nint signal(int signum, nint handler);
}
