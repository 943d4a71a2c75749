using Berth.Shim;
using Berth.Shim.Container;
using Berth.Shim.Native;
using Berth.ShimProtocol;

return args switch
{
    // The sandbox ID is not used; it names the pod in ps and lets berthd find its infra after a crash.
    [PodInfraCommandLine.Verb] or [PodInfraCommandLine.Verb, "--sandbox", _] => PodInfra.Run(),
    [ShimCommandLine.Verb, .. var options] => Run(options),
    [UserNamespaceHelperProtocol.Verb, "--sandbox", var sandbox] => UserNamespaceHelper.Run(sandbox, sharedPid: false),
    [UserNamespaceHelperProtocol.Verb, "--sandbox", var sandbox, "--pid"] => UserNamespaceHelper.Run(sandbox, sharedPid: true),
    ["--help" or "-h"] => Usage(1, 0),
    _ => Usage(2, 2),
};

static int Run(string[] args)
{
    var options = ShimCommandLine.Parse(args, out var error);
    if (options is null)
    {
        Fd.WriteText(2, $"berth-shim run: {error}\n");
        return 2;
    }
    return ContainerShim.Run(options);
}

// Console would bring its terminal handling into every shim; plain writes to the descriptor do.
static int Usage(int fd, int code)
{
    Fd.WriteText(fd, """
        usage: berth-shim pause [--sandbox <id>]
               berth-shim userns --sandbox <id> [--pid]
               berth-shim run --id <id> --bundle <dir> --runtime <binary> --runtime-root <dir> --exit-file <path>
                              [--log <path>] [--tty] [--stdin] [--stdin-once]
          pause   hold a pod's shared PID namespace as its PID 1, reaping orphans until SIGTERM or SIGINT
          userns  make a pod's user namespace with its network, IPC and UTS namespaces (and with --pid its infra) for berthd to pin
          run     create one container with the OCI runtime and keep it: its stdio, CRI log, attach and exit status

        """);
    return code;
}
