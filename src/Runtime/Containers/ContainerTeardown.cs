using Microsoft.Extensions.Logging;

namespace Berth.Runtime.Containers;

/// <summary>Undoes a container, whatever state it was left in: shim, runtime state, rootfs mount, bundle, layers, exit file.</summary>
internal sealed partial class ContainerTeardown(RuntimeHandlers handlers, IRootfsMounter rootfs, ContainerTable table, string exitDirectory, ILogger logger)
{
    public string ExitFileOf(string id) => Path.Combine(exitDirectory, id);

    /// <summary>Where a container's image volumes are mounted, one directory each.</summary>
    public static string ImageMountsOf(ContainerRecord record) => Path.Combine(record.Directory, "image-mounts");

    /// <summary>
    /// Where a container in a pod user namespace has its idmapped copies (<see cref="IdmappedMount"/>), a directory per
    /// group: in the bundle, which the namespace's root can reach (the persistent root is the owner's alone).
    /// </summary>
    public static string IdmappedOf(ContainerRecord record) => Path.Combine(record.Bundle, "idmapped");

    /// <summary>Each step is idempotent, so a teardown that failed halfway is simply run again.</summary>
    public async Task TearDownAsync(ContainerRecord record)
    {
        var runtime = handlers.Find(record.RuntimeHandler);
        if (runtime is null)
        {
            // Its handler was taken out of the configuration: berthd cannot reach the runtime, but the files still go.
            LogHandlerGone(logger, record.Id, record.RuntimeHandler);
        }
        else if (record.State == ContainerState.Exited)
        {
            // The exit was handled: the runtime's state is deleted and the shim has gone or is going.
            if (record.Shim is { } shim) runtime.KillShim(record.Id, shim);
        }
        else
        {
            // A shim started just before a crash has no PID on record yet: it is found by its command line.
            runtime.KillShim(record.Id, known: null);
            await runtime.DeleteAsync(record.Id, CancellationToken.None);
        }
        rootfs.Unmount(Path.Combine(record.Bundle, "rootfs"));
        if (Directory.Exists(ImageMountsOf(record)))
        {
            foreach (var imageMount in Directory.EnumerateDirectories(ImageMountsOf(record))) rootfs.Unmount(imageMount);
        }
        IdmappedMount.RemoveAll(IdmappedOf(record));
        // By directory descriptors: the writable layer is the container's to shape (any depth, any links), and a
        // rootfs still mounted is refused, never emptied through the mount.
        Berth.Native.FileTree.Remove(record.Bundle);
        Berth.Native.FileTree.Remove(record.Directory);
        File.Delete(ExitFileOf(record.Id));
    }

    /// <summary>Undoes a create that failed or was interrupted; a rollback that fails leaves the Creating record, and the next start retries it.</summary>
    public async Task RollBackAsync(ContainerRecord record)
    {
        try
        {
            await TearDownAsync(record);
            table.Delete(record, announce: false);
        }
        catch (Exception e)
        {
            LogRollbackFailed(logger, record.Id, e);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "container {Id}: its runtime handler '{Handler}' is no longer configured; its runtime state and shim are left to the runtime")]
    private static partial void LogHandlerGone(ILogger logger, string id, string handler);

    [LoggerMessage(Level = LogLevel.Error, Message = "container {Id}: rollback failed; it will be retried at the next start")]
    private static partial void LogRollbackFailed(ILogger logger, string id, Exception exception);
}
