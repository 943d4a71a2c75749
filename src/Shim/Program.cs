using Berth.Shim;
using Berth.Shim.Container;

return args switch
{
    // The sandbox ID is not used; it names the pod in ps and lets berthd find its infra after a crash.
    ["pause"] or ["pause", "--sandbox", _] => PodInfra.Run(),
    ["run", .. var options] => Run(options),
    ["--help" or "-h"] => Usage(Console.Out, 0),
    _ => Usage(Console.Error, 2),
};

static int Run(string[] args)
{
    var options = ShimOptions.Parse(args, out var error);
    if (options is null)
    {
        Console.Error.WriteLine($"berth-shim run: {error}");
        return 2;
    }
    return ContainerShim.Run(options);
}

static int Usage(TextWriter writer, int code)
{
    writer.WriteLine("usage: berth-shim pause [--sandbox <id>]");
    writer.WriteLine("       berth-shim run --id <id> --bundle <dir> --runtime <binary> --runtime-root <dir> --exit-file <path>");
    writer.WriteLine("                      [--log <path>] [--tty] [--stdin] [--stdin-once]");
    writer.WriteLine("  pause   hold a pod's shared PID namespace as its PID 1, reaping orphans until SIGTERM or SIGINT");
    writer.WriteLine("  run     create one container with the OCI runtime and keep it: its stdio, CRI log, attach and exit status");
    return code;
}
