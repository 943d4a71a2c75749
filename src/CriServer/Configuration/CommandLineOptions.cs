using System.CommandLine;

namespace Berth.CriServer.Configuration;

/// <summary>berthd's flags. Each one overrides the config file.</summary>
public sealed record CommandLineOptions
{
    public string? ConfigPath { get; init; }
    public string? Socket { get; init; }
    public string? Root { get; init; }
    public string? State { get; init; }
    public LogLevel? LogLevel { get; init; }

    /// <summary>The flags alone, as a command line of nothing else (what the config subcommands and tests parse).</summary>
    public static CommandLineOptions Parse(IReadOnlyList<string> args)
    {
        var flags = new DaemonFlags();
        var root = new RootCommand();
        flags.AddTo(root);
        var result = root.Parse(args.ToArray());
        if (result.Errors.Count > 0) throw new ConfigException(result.Errors[0].Message);
        return flags.Read(result);
    }
}

/// <summary>The flags every berthd command takes (the daemon, import, export, config dump), as System.CommandLine options.</summary>
public sealed class DaemonFlags
{
    private readonly Option<string?> _config = Path("--config",
        $"config file (default {BerthConfig.DefaultConfigPath}; optional when it is absent), then every {ConfigLoader.DropInDirectory}/*.toml beside it in lexical order");

    private readonly Option<string?> _socket = Path("--socket", "CRI socket, overrides grpc.socket (default /run/berth/berth.sock)");
    private readonly Option<string?> _root = Path("--root", "persistent state, overrides root (default /var/lib/berth)");
    private readonly Option<string?> _state = Path("--state", "volatile state, overrides state (default /run/berth)");

    private readonly Option<LogLevel?> _logLevel = new("--log-level")
    {
        Description = $"{string.Join(", ", ConfigLoader.LogLevels.Keys)}; overrides log_level (default info)",
        HelpName = "level",
        Recursive = true,
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (ConfigLoader.LogLevels.TryGetValue(text, out var level)) return level;
            result.AddError($"--log-level: '{text}' is not one of {string.Join(", ", ConfigLoader.LogLevels.Keys)}");
            return null;
        },
    };

    private static Option<string?> Path(string name, string description) => new(name)
    {
        Description = description,
        HelpName = name is "--config" or "--socket" ? "path" : "dir",
        Recursive = true,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(_config);
        command.Options.Add(_socket);
        command.Options.Add(_root);
        command.Options.Add(_state);
        command.Options.Add(_logLevel);
    }

    public CommandLineOptions Read(ParseResult result) => new()
    {
        ConfigPath = result.GetValue(_config),
        Socket = result.GetValue(_socket),
        Root = result.GetValue(_root),
        State = result.GetValue(_state),
        LogLevel = result.GetValue(_logLevel),
    };
}
