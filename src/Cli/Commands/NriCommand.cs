using System.CommandLine;
using System.Text.Json;
using Berth.Cri.V1;

namespace Berth.Cli.Commands;

/// <summary>
/// <c>berth nri</c>: the NRI plugins connected to berthd, in the order it calls them, with the events each subscribed
/// to, and any required plugin that is missing; read from berthd's Status(verbose) entry <c>nri</c>.
/// </summary>
internal static class NriCommand
{
    public static Command Create(GlobalOptions global)
    {
        var command = new Command("nri", "list the NRI plugins connected to berthd");
        global.SetAction(command, async (_, cri, cancellationToken) =>
        {
            var status = await cri.Runtime.StatusAsync(new StatusRequest { Verbose = true }, deadline: cri.Deadline, cancellationToken: cancellationToken);
            if (!status.Info.TryGetValue("nri", out var json)) throw new CliException("berthd reports no NRI state (it predates NRI)");
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            if (!root.GetProperty("enabled").GetBoolean())
            {
                Console.Out.WriteLine("NRI is disabled ([nri] enable = false)");
                return 0;
            }
            var plugins = root.GetProperty("plugins").EnumerateArray().ToList();
            var table = new Table("PLUGIN", "KIND", "PID", "EVENTS");
            foreach (var p in plugins)
            {
                var pid = p.GetProperty("pid").GetInt32();
                table.Add($"{p.GetProperty("index").GetString()}-{p.GetProperty("name").GetString()}", p.GetProperty("kind").GetString()!,
                    pid > 0 ? pid.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-",
                    string.Join(",", p.GetProperty("events").EnumerateArray().Select(e => e.GetString())));
            }
            table.WriteTo(Console.Out);
            var socket = root.GetProperty("socket").GetString();
            if (plugins.Count == 0) Console.Out.WriteLine($"(no NRI plugins; external ones connect to {(string.IsNullOrEmpty(socket) ? "nothing: connections are disabled" : socket)})");
            var connected = plugins.SelectMany(p => new[] { p.GetProperty("name").GetString(), $"{p.GetProperty("index").GetString()}-{p.GetProperty("name").GetString()}" }).ToHashSet();
            var missing = root.GetProperty("required").EnumerateArray().Select(r => r.GetString()!).Where(r => !connected.Contains(r)).ToList();
            foreach (var name in missing) Console.Error.WriteLine($"required plugin {name} is not connected: no pod or container is created until it is");
            return missing.Count > 0 ? 1 : 0;
        });
        return command;
    }
}
