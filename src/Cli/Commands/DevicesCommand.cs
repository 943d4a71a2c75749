using System.CommandLine;
using System.Text.Json;
using Berth.Cri.V1;

namespace Berth.Cli.Commands;

/// <summary>
/// <c>berth devices</c>: the CDI devices berthd can give containers and the spec file each comes from, then the spec
/// files it skipped and the devices in conflict, read from berthd's Status(verbose) entry <c>cdi</c>.
/// </summary>
internal static class DevicesCommand
{
    public static Command Create(GlobalOptions global)
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "print only the device names" };
        var command = new Command("devices", "list the CDI devices berthd knows (cdi.spec_dirs)") { quiet };
        global.SetAction(command, async (result, cri, cancellationToken) =>
        {
            var status = await cri.Runtime.StatusAsync(new StatusRequest { Verbose = true }, deadline: cri.Deadline, cancellationToken: cancellationToken);
            if (!status.Info.TryGetValue("cdi", out var json)) throw new CliException("berthd reports no CDI devices (it predates them)");
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            var devices = root.GetProperty("devices").EnumerateArray().Select(d => (Name: d.GetProperty("name").GetString()!, Spec: d.GetProperty("spec").GetString()!)).ToList();
            if (result.GetValue(quiet))
            {
                foreach (var (name, _) in devices) Console.Out.WriteLine(name);
                return 0;
            }
            var table = new Table("DEVICE", "SPEC");
            foreach (var (name, spec) in devices) table.Add(name, spec);
            table.WriteTo(Console.Out);
            var dirs = string.Join(", ", root.GetProperty("specDirs").EnumerateArray().Select(d => d.GetString()));
            if (devices.Count == 0) Console.Out.WriteLine($"(no CDI devices in {dirs})");
            foreach (var error in root.GetProperty("errors").EnumerateObject())
                Console.Error.WriteLine($"skipped {error.Name}: {error.Value.GetString()}");
            foreach (var conflict in root.GetProperty("conflicts").EnumerateObject())
                Console.Error.WriteLine($"conflict: {conflict.Name} is defined by {string.Join(" and ", conflict.Value.EnumerateArray().Select(f => f.GetString()))}; it cannot be resolved");
            return 0;
        });
        return command;
    }
}
