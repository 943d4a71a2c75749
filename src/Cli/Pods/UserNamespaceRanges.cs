using Berth.Cri.V1;

namespace Berth.Cli.Pods;

/// <summary>
/// Host ID ranges for <c>hostUsers: false</c> pods, as the kubelet's user namespace manager hands them out: blocks of
/// 65536 IDs, never the first (the host's own users), never one another pod on the node holds.
/// </summary>
internal static class UserNamespaceRanges
{
    public const uint BlockLength = 65536;
    private const uint Blocks = 1024;

    public static async Task<UserNamespace> AllocateAsync(CriConnection cri, CancellationToken cancellationToken)
    {
        var used = new HashSet<uint>();
        var pods = (await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: cri.Deadline, cancellationToken: cancellationToken)).Items;
        foreach (var pod in pods)
        {
            var status = await cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod.Id }, deadline: cri.Deadline, cancellationToken: cancellationToken);
            foreach (var mapping in status.Status?.Linux?.Namespaces?.Options?.UsernsOptions?.Uids ?? [])
                used.Add(mapping.HostId / BlockLength);
        }
        for (uint block = 1; block < Blocks; block++)
        {
            if (used.Contains(block)) continue;
            var mapping = new IDMapping { HostId = block * BlockLength, ContainerId = 0, Length = BlockLength };
            return new UserNamespace { Mode = NamespaceMode.Pod, Uids = { mapping }, Gids = { mapping.Clone() } };
        }
        throw new CliException($"every one of the {Blocks - 1} user namespace ranges is in use");
    }
}
