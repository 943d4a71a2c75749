namespace Berth.Shim.Container;

/// <summary>
/// The command line of <c>berth-shim run</c>, as berthd writes it. The shim works in the bundle directory, so
/// the socket names are relative to it and stay under the 108-byte limit of a unix socket path.
/// </summary>
internal sealed record ShimOptions
{
    public required string Id { get; init; }
    public required string Bundle { get; init; }
    public required string Runtime { get; init; }
    public required string RuntimeRoot { get; init; }
    public required string ExitFile { get; init; }
    public string? LogPath { get; init; }
    public bool Tty { get; init; }
    public bool Stdin { get; init; }
    public bool StdinOnce { get; init; }

    public const string AttachSocket = "attach.sock";
    public const string ControlSocket = "control.sock";
    public const string ConsoleSocket = "console.sock";
    public const string InitPidFile = "init.pid";
    public const string RuntimeLog = "runtime.log";

    public static ShimOptions? Parse(IReadOnlyList<string> args, out string error)
    {
        string? id = null, bundle = null, runtime = null, root = null, exitFile = null, log = null;
        bool tty = false, stdin = false, stdinOnce = false;
        for (var i = 0; i < args.Count; i++)
        {
            string Value()
            {
                if (i + 1 >= args.Count) throw new ArgumentException($"{args[i]} needs a value");
                return args[++i];
            }

            try
            {
                switch (args[i])
                {
                    case "--id": id = Value(); break;
                    case "--bundle": bundle = Value(); break;
                    case "--runtime": runtime = Value(); break;
                    case "--runtime-root": root = Value(); break;
                    case "--exit-file": exitFile = Value(); break;
                    case "--log": log = Value(); break;
                    case "--tty": tty = true; break;
                    case "--stdin": stdin = true; break;
                    case "--stdin-once": stdinOnce = true; break;
                    default: error = $"unknown option {args[i]}"; return null;
                }
            }
            catch (ArgumentException e)
            {
                error = e.Message;
                return null;
            }
        }
        if (id is null || bundle is null || runtime is null || root is null || exitFile is null)
        {
            error = "--id, --bundle, --runtime, --runtime-root and --exit-file are required";
            return null;
        }
        error = "";
        return new ShimOptions
        {
            Id = id, Bundle = bundle, Runtime = runtime, RuntimeRoot = root, ExitFile = exitFile,
            LogPath = string.IsNullOrEmpty(log) ? null : log, Tty = tty, Stdin = stdin, StdinOnce = stdinOnce,
        };
    }
}
