using Berth.Shim;

return args switch
{
    // The sandbox ID is not used; it names the pod in ps and lets berthd find its infra after a crash.
    ["pause"] or ["pause", "--sandbox", _] => PodInfra.Run(),
    ["--help" or "-h"] => Usage(Console.Out, 0),
    _ => Usage(Console.Error, 2),
};

static int Usage(TextWriter writer, int code)
{
    writer.WriteLine("usage: berth-shim pause [--sandbox <id>]");
    writer.WriteLine("  pause   hold a pod's shared PID namespace as its PID 1, reaping orphans until SIGTERM or SIGINT");
    return code;
}
