using Berth.Cri.V1;

namespace Berth.Cli.Commands;

/// <summary>Finds a container or pod by full ID, unique ID prefix or name, as crictl accepts them.</summary>
internal static class Resolve
{
    public static async Task<Container> ContainerAsync(CriConnection cri, string reference, CancellationToken cancellationToken)
    {
        var containers = (await cri.Runtime.ListContainersAsync(new ListContainersRequest(), deadline: cri.Deadline, cancellationToken: cancellationToken)).Containers;
        return One(reference, "container",
            containers.Where(c => c.Id == reference).ToList() is { Count: 1 } exact ? exact
            : containers.Where(c => c.Id.StartsWith(reference, StringComparison.Ordinal) || c.Metadata.Name == reference)
                // Of several attempts of one name, the newest.
                .GroupBy(c => c.Id.StartsWith(reference, StringComparison.Ordinal) ? c.Id : c.PodSandboxId + "/" + c.Metadata.Name)
                .Select(g => g.MaxBy(c => c.CreatedAt)!).ToList());
    }

    public static async Task<PodSandbox> PodAsync(CriConnection cri, string reference, CancellationToken cancellationToken)
    {
        var pods = (await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: cri.Deadline, cancellationToken: cancellationToken)).Items;
        return One(reference, "pod",
            pods.Where(p => p.Id == reference).ToList() is { Count: 1 } exact ? exact
            : pods.Where(p => p.Id.StartsWith(reference, StringComparison.Ordinal) || p.Metadata.Name == reference).ToList());
    }

    private static T One<T>(string reference, string kind, List<T> matches) => matches.Count switch
    {
        1 => matches[0],
        0 => throw new CliException($"no {kind} matches '{reference}'"),
        _ => throw new CliException($"'{reference}' matches {matches.Count} {kind}s: give more of the ID"),
    };
}
