
namespace Berth.CriServer.Configuration;

/// <summary>berthd's flags. Each one overrides the config file.</summary>
public sealed record CommandLineOptions
{
    public string? ConfigPath { get; init; }
    public string? Socket { get; init; }
    public string? Root { get; init; }
    public string? State { get; init; }
    public LogLevel? LogLevel { get; init; }
    public bool Help { get; init; }
    public bool Version { get; init; }

    public const string Usage = """
        Usage: berthd [options]
               berthd import [options] <archive>     (see berthd import --help)
               berthd export [options] <image> <tar> (see berthd export --help)
               berthd config default                 print the default config, a comment per key
               berthd config dump [options]          print the effective config (file, config.d drop-ins, flags)

        Berth serves the Kubernetes CRI v1 (RuntimeService and ImageService) on a unix socket.

        Options:
          --config <path>      config file (default /etc/berth/config.toml; optional when it is absent), then
                               every config.d/*.toml beside it in lexical order
          --socket <path>      CRI socket, overrides grpc.socket (default /run/berth/berth.sock)
          --root <dir>         persistent state, overrides root (default /var/lib/berth)
          --state <dir>        volatile state, overrides state (default /run/berth)
          --log-level <level>  trace, debug, info, warn or error; overrides log_level (default info)
          --version            print the version and exit
          -h, --help           print this help and exit
        """;

    /// <summary>Parses <c>--flag value</c> and <c>--flag=value</c>; anything unknown is an error naming it.</summary>
    public static CommandLineOptions Parse(IReadOnlyList<string> args)
    {
        var options = new CommandLineOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string? inlineValue = null;
            var equals = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && equals > 0)
            {
                inlineValue = arg[(equals + 1)..];
                arg = arg[..equals];
            }

            string Value()
            {
                if (inlineValue is not null) return inlineValue;
                if (i + 1 >= args.Count || args[i + 1].Length == 0)
                    throw new ConfigException($"{arg}: a value is required");
                return args[++i];
            }

            options = arg switch
            {
                "--config" => options with { ConfigPath = Value() },
                "--socket" => options with { Socket = Value() },
                "--root" => options with { Root = Value() },
                "--state" => options with { State = Value() },
                "--log-level" => options with { LogLevel = ParseLevel(Value()) },
                "--help" or "-h" => options with { Help = true },
                "--version" => options with { Version = true },
                _ => throw new ConfigException($"unknown argument '{args[i]}' (see berthd --help)"),
            };
        }
        return options;
    }

    private static LogLevel ParseLevel(string text) =>
        ConfigLoader.LogLevels.TryGetValue(text, out var level)
            ? level
            : throw new ConfigException($"--log-level: '{text}' is not one of {string.Join(", ", ConfigLoader.LogLevels.Keys)}");
}
