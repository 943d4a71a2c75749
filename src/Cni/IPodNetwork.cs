namespace Berth.Cni;

/// <summary>What the sandbox lifecycle asks of the pod network: <see cref="CniNetwork"/> on a node, a fake in unit tests.</summary>
public interface IPodNetwork
{
    Task<CniResult> AddAsync(CniRuntimeConfig runtime, CancellationToken cancellationToken);

    /// <summary>Undoes an ADD; with <paramref name="onlyIfAdded"/>, only one known to have completed.</summary>
    Task DelAsync(CniRuntimeConfig runtime, bool onlyIfAdded, CancellationToken cancellationToken);

    Task<(bool Ready, string Reason)> StatusAsync(CancellationToken cancellationToken);

    /// <summary>Frees what attachments other than <paramref name="liveContainerIds"/> hold; returns the errors met.</summary>
    Task<IReadOnlyList<string>> GarbageCollectAsync(IReadOnlySet<string> liveContainerIds, CancellationToken cancellationToken);
}
