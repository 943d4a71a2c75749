using System.CommandLine;
using Berth.Cli.Commands;

namespace Berth.Cli;

internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        var global = new GlobalOptions();
        var root = new RootCommand("berth: run pod manifests, inspect containers and move images on a Berth node, over CRI.");
        global.AddTo(root);
        root.Subcommands.Add(PlayCommand.Create(global));
        root.Subcommands.Add(ContainerCommands.Ps(global));
        root.Subcommands.Add(ContainerCommands.Pods(global));
        root.Subcommands.Add(LogsCommand.Create(global));
        root.Subcommands.Add(ExecCommand.Create(global));
        foreach (var command in ImageCommands.Create(global)) root.Subcommands.Add(command);
        root.Subcommands.Add(DevicesCommand.Create(global));
        root.Subcommands.Add(NriCommand.Create(global));
        root.Subcommands.Add(ContainerCommands.Version(global));
        return await root.Parse(args).InvokeAsync();
    }
}
