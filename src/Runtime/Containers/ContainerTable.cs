using System.Collections.Concurrent;
using Berth.Records;

namespace Berth.Runtime.Containers;

/// <summary>
/// The containers berthd knows: their crash-safe records, one lock per container (a container's state changes one at
/// a time, and its events come in that order), the signal that its exit was handled, and the change events.
/// </summary>
internal sealed class ContainerTable(RecordStore<ContainerRecord> store)
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _exits = new(StringComparer.Ordinal);

    public event Action<ContainerChange>? Changed;

    public IReadOnlyList<ContainerRecord> List() => store.List();

    public ContainerRecord? Get(string id) => store.Get(id);

    public ContainerRecord GetRequired(string id) => store.Get(id) ?? throw new ContainerNotFoundException(id);

    /// <summary>By ID, else by a unique prefix of one (crictl passes abbreviated IDs through); null when none or several match.</summary>
    public ContainerRecord? Find(string id) => store.Get(id) ?? (store.ResolvePrefix(id) is { } full ? store.Get(full) : null);

    /// <summary>Stores a new container as Creating, refusing a name its pod has already.</summary>
    public void Reserve(ContainerRecord record) =>
        store.Reserve(record, holder => new ContainerExistsException(
            $"metadata: a container named {record.Name} (attempt {record.Attempt}) exists already in pod {record.PodId}: {holder}"));

    /// <summary>Stores a change without an event (the record's progress within one state).</summary>
    public void Update(ContainerRecord record) => store.Update(record);

    /// <summary>Stores a state change and raises its event.</summary>
    public void Commit(ContainerRecord record, ContainerChangeKind kind)
    {
        store.Update(record);
        Changed?.Invoke(new(kind, record));
        if (kind == ContainerChangeKind.Exited) ExitOf(record.Id).TrySetResult();
    }

    /// <summary>Forgets a container; <paramref name="announce"/> raises Removed (a rolled-back create was never announced).</summary>
    public void Delete(ContainerRecord record, bool announce)
    {
        store.Delete(record);
        _locks.TryRemove(record.Id, out _);
        _exits.TryRemove(record.Id, out _);
        if (announce) Changed?.Invoke(new(ContainerChangeKind.Removed, record));
    }

    /// <summary>Completes when the container's exit has been handled (its record says Exited).</summary>
    public TaskCompletionSource ExitOf(string id) => _exits.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public async Task<Releaser> LockAsync(string id, CancellationToken cancellationToken)
    {
        var semaphore = _locks.GetOrAdd(id, _ => new SemaphoreSlim(1, 1));
        await semaphore.WaitAsync(cancellationToken);
        return new Releaser(semaphore);
    }

    public readonly struct Releaser(SemaphoreSlim semaphore) : IDisposable
    {
        public void Dispose() => semaphore.Release();
    }

    /// <summary>Unix time in nanoseconds, as CRI reports times.</summary>
    public static long Now() => (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100;
}
