using System.CommandLine;
using System.Globalization;
using Berth.Cri.V1;

namespace Berth.Cli.Commands;

/// <summary><c>berth ps</c>, <c>berth pods</c> and <c>berth version</c>: what runs on the node, as crictl shows it.</summary>
internal static class ContainerCommands
{
    public static Command Ps(GlobalOptions global)
    {
        var all = new Option<bool>("--all", "-a") { Description = "show exited containers too" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "print only the IDs" };
        var pod = new Option<string?>("--pod", "-p") { Description = "only the containers of this pod (ID or prefix)" };
        var command = new Command("ps", "list containers") { all, quiet, pod };
        global.SetAction(command, async (result, cri, cancellationToken) =>
        {
            var request = new ListContainersRequest { Filter = new ContainerFilter() };
            if (!result.GetValue(all)) request.Filter.State = new ContainerStateValue { State = ContainerState.ContainerRunning };
            if (result.GetValue(pod) is { } podRef) request.Filter.PodSandboxId = (await Resolve.PodAsync(cri, podRef, cancellationToken)).Id;
            var containers = (await cri.Runtime.ListContainersAsync(request, deadline: cri.Deadline, cancellationToken: cancellationToken)).Containers
                .OrderByDescending(c => c.CreatedAt).ToList();
            if (result.GetValue(quiet))
            {
                foreach (var c in containers) Console.Out.WriteLine(c.Id);
                return 0;
            }
            var pods = (await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: cri.Deadline, cancellationToken: cancellationToken)).Items
                .ToDictionary(p => p.Id, p => p.Metadata.Name);
            var table = new Table("CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD");
            foreach (var c in containers)
            {
                table.Add(Short(c.Id), c.Image?.UserSpecifiedImage is { Length: > 0 } image ? image : c.ImageRef, Ago(c.CreatedAt), StateName(c.State),
                    c.Metadata.Name, c.Metadata.Attempt.ToString(CultureInfo.InvariantCulture), Short(c.PodSandboxId), pods.GetValueOrDefault(c.PodSandboxId, ""));
            }
            table.WriteTo(Console.Out);
            return 0;
        });
        return command;
    }

    public static Command Pods(GlobalOptions global)
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "print only the IDs" };
        var command = new Command("pods", "list pod sandboxes") { quiet };
        global.SetAction(command, async (result, cri, cancellationToken) =>
        {
            var pods = (await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: cri.Deadline, cancellationToken: cancellationToken)).Items
                .OrderByDescending(p => p.CreatedAt).ToList();
            if (result.GetValue(quiet))
            {
                foreach (var p in pods) Console.Out.WriteLine(p.Id);
                return 0;
            }
            var table = new Table("POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME");
            foreach (var p in pods)
            {
                table.Add(Short(p.Id), Ago(p.CreatedAt), p.State == PodSandboxState.SandboxReady ? "Ready" : "NotReady", p.Metadata.Name,
                    p.Metadata.Namespace, p.Metadata.Attempt.ToString(CultureInfo.InvariantCulture), p.RuntimeHandler.Length == 0 ? "(default)" : p.RuntimeHandler);
            }
            table.WriteTo(Console.Out);
            return 0;
        });
        return command;
    }

    public static Command Version(GlobalOptions global)
    {
        var command = new Command("version", "print the versions of berth and of the runtime it reaches");
        global.SetAction(command, async (_, cri, cancellationToken) =>
        {
            Console.Out.WriteLine($"berth {typeof(ContainerCommands).Assembly.GetName().Version?.ToString(3)}");
            var version = await cri.Runtime.VersionAsync(new VersionRequest(), deadline: cri.Deadline, cancellationToken: cancellationToken);
            Console.Out.WriteLine($"runtime {version.RuntimeName} {version.RuntimeVersion} (CRI {version.RuntimeApiVersion})");
            return 0;
        });
        return command;
    }

    internal static string Short(string id) => id.Length > 13 ? id[..13] : id;

    internal static string StateName(ContainerState state) => state switch
    {
        ContainerState.ContainerCreated => "Created",
        ContainerState.ContainerRunning => "Running",
        ContainerState.ContainerExited => "Exited",
        _ => "Unknown",
    };

    internal static string Ago(long unixNanos)
    {
        var age = DateTimeOffset.UtcNow - DateTimeOffset.FromUnixTimeMilliseconds(unixNanos / 1_000_000);
        return age.TotalSeconds < 60 ? $"{Math.Max(0, (int)age.TotalSeconds)} seconds ago"
            : age.TotalMinutes < 60 ? $"{(int)age.TotalMinutes} minutes ago"
            : age.TotalHours < 48 ? $"{(int)age.TotalHours} hours ago"
            : $"{(int)age.TotalDays} days ago";
    }
}
