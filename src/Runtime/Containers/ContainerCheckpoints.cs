using System.Security.Cryptography;
using System.Text.Json;
using Berth.Runtime.Checkpoints;
using Microsoft.Extensions.Logging;

namespace Berth.Runtime.Containers;

/// <summary>
/// CheckpointContainer: CRIU dumps a running container through its OCI runtime (<c>checkpoint --leave-running</c>,
/// so it runs on) and berthd writes the archive CRI-O and containerd write (<see cref="CheckpointLayout"/>). The work
/// happens in a directory under the state dir, which goes whatever happens; the archive appears whole or not at all.
/// Restoring is <see cref="ContainerCreation"/>'s (the rootfs diff) and <see cref="ContainerLifecycle"/>'s (CRIU's
/// restore through a new shim) with what <see cref="PrepareRestoreAsync"/> unpacked.
/// </summary>
internal sealed partial class ContainerCheckpoints(ContainerOptions options, ContainerTable table, RuntimeHandlers handlers, ILogger logger)
{
    // On the data dir's disk, as the containers' directories: CRIU's images are as large as the memory dumped, which
    // the state dir's tmpfs would hold in memory a second time.
    private string WorkRoot => Path.Combine(options.DataDirectory, "checkpoints");

    /// <summary>Where unpacked checkpoints wait for the CreateContainer that restores them (cleared at startup).</summary>
    private string RestoreRoot => Path.Combine(options.DataDirectory, "restores");

    public async Task CheckpointAsync(string id, string location, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        if (!Path.IsPathFullyQualified(location) || location.EndsWith('/') || location.Contains('\0', StringComparison.Ordinal))
            throw new ContainerRequestException($"location: '{location}' is not an absolute file path");
        using var held = await table.LockAsync(id, cancellationToken);
        var record = table.GetRequired(id);
        if (record.State != ContainerState.Running)
            throw new ContainerStateException($"container {id} is {record.State}; only a running container can be checkpointed");
        if (record.Tty)
            throw new ContainerPreconditionException($"container {id} has a terminal, which CRIU cannot take along; only containers with pipes as stdio can be checkpointed");
        var spec = await File.ReadAllBytesAsync(Path.Combine(record.Bundle, "config.json"), cancellationToken);
        if (UsesUserNamespace(spec))
            throw new ContainerPreconditionException($"container {id} is in its pod's own user namespace, whose idmapped mounts CRIU 3.17 cannot dump");
        var runtime = handlers.Of(record);
        if (await runtime.CheckpointUnsupportedAsync() is { } why) throw new ContainerPreconditionException($"container {id} cannot be checkpointed: {why}");

        var work = Path.Combine(WorkRoot, $"{id[..12]}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        Directory.CreateDirectory(work, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            var images = Directory.CreateDirectory(Path.Combine(work, CheckpointLayout.CheckpointDirectory)).FullName;
            var criu = Directory.CreateDirectory(Path.Combine(work, "criu")).FullName;
            var checkpointedAt = DateTimeOffset.UtcNow;
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                if (timeout is { } limit) deadline.CancelAfter(limit);
                try
                {
                    await runtime.CheckpointAsync(id, images, criu, deadline.Token);
                }
                catch (OperationCanceledException)
                {
                    // CRIU was stopped midway: the container must not stay frozen.
                    Thaw(record);
                    if (cancellationToken.IsCancellationRequested) throw;
                    throw new ContainerTimeoutException($"the checkpoint of container {id} took longer than its timeout of {timeout!.Value.TotalSeconds:0} s; it was stopped and the container runs on");
                }
            }
            foreach (var file in new[] { CheckpointLayout.DumpLog, CheckpointLayout.StatsDump })
            {
                if (File.Exists(Path.Combine(criu, file))) File.Move(Path.Combine(criu, file), Path.Combine(work, file));
            }
            Directory.Delete(criu, recursive: true);

            await File.WriteAllBytesAsync(Path.Combine(work, CheckpointLayout.SpecDump), spec, cancellationToken);
            CheckpointArchive.WriteJson(Path.Combine(work, CheckpointLayout.ConfigDump), new CheckpointConfig
            {
                Id = record.Id,
                Name = record.Name,
                RootfsImage = record.ImageName.Length > 0 ? record.ImageName : record.Image,
                RootfsImageRef = record.ImageRef,
                RootfsImageName = record.ImageName.Length > 0 ? record.ImageName : record.Image,
                Runtime = runtime.Binary,
                CreatedTime = DateTimeOffset.FromUnixTimeMilliseconds(record.CreatedAt / 1_000_000),
                CheckpointedTime = checkpointedAt,
            }, CheckpointJsonContext.Default.CheckpointConfig);
            CheckpointArchive.WriteJson(Path.Combine(work, CheckpointLayout.Status), new CheckpointStatus
            {
                CreatedAt = record.CreatedAt, StartedAt = record.StartedAt, Pid = (uint)record.InitPid,
            }, CheckpointJsonContext.Default.CheckpointStatus);
            var deleted = await RootfsDiff.WriteAsync(ContainerManager.WritableLayerOf(record), Path.Combine(work, CheckpointLayout.RootfsDiff), cancellationToken);
            CheckpointArchive.WriteJson(Path.Combine(work, CheckpointLayout.DeletedFiles), deleted, CheckpointJsonContext.Default.ListString);
            if (record.LogPath is { } log && File.Exists(log)) File.Copy(log, Path.Combine(work, CheckpointLayout.ContainerLog));

            Directory.CreateDirectory(Path.GetDirectoryName(location)!);
            await CheckpointArchive.WriteAsync(work, location, cancellationToken);
            LogCheckpointed(logger, id, location, (DateTimeOffset.UtcNow - checkpointedAt).TotalMilliseconds);
        }
        finally
        {
            Berth.Native.FileTree.Remove(work);
        }
    }

    /// <summary>
    /// Unpacks a checkpoint archive (a file; a checkpoint image's layer is one too) for a CreateContainer to restore from,
    /// and reads what it was. A container that takes it moves it into its bundle; otherwise the caller <see cref="Discard"/>s it.
    /// </summary>
    public async Task<PreparedRestore> PrepareRestoreAsync(string archive, CancellationToken cancellationToken)
    {
        var unpacker = options.ArchiveUnpacker ?? throw new ContainerPreconditionException("this berthd restores no checkpoints (no archive unpacker)");
        var directory = Path.Combine(RestoreRoot, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)));
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            await unpacker.UnpackFileAsync(archive, directory, cancellationToken);
            var config = CheckpointArchive.ReadConfig(directory);
            if (!Directory.Exists(Path.Combine(directory, CheckpointLayout.CheckpointDirectory)))
                throw new InvalidDataException($"it has no {CheckpointLayout.CheckpointDirectory}/ with CRIU's images");
            return new PreparedRestore(directory, config);
        }
        catch (Exception e)
        {
            Berth.Native.FileTree.Remove(directory);
            if (e is InvalidDataException) throw new ContainerRequestException($"{archive} is no checkpoint archive Berth can restore: {e.Message}");
            throw;
        }
    }

    /// <summary>A restore prepared and not taken by a container (its CreateContainer failed): its files go.</summary>
    public static void Discard(PreparedRestore restore) => Berth.Native.FileTree.Remove(restore.Directory);

    /// <summary>At startup: checkpoints and unpacked archives a crash left behind.</summary>
    public void RemoveLeftovers()
    {
        foreach (var root in new[] { WorkRoot, RestoreRoot })
        {
            if (!Directory.Exists(root)) continue;
            foreach (var leftover in Directory.EnumerateDirectories(root)) Berth.Native.FileTree.Remove(leftover);
        }
    }

    private static bool UsesUserNamespace(byte[] spec)
    {
        using var document = JsonDocument.Parse(spec);
        return document.RootElement.TryGetProperty("linux", out var linux) && linux.TryGetProperty("namespaces", out var namespaces)
               && namespaces.EnumerateArray().Any(n => n.TryGetProperty("type", out var type) && type.GetString() == "user");
    }

    /// <summary>Lets the container's processes go on after CRIU was stopped while it had them frozen (v1 freezer, v2 cgroup.freeze).</summary>
    private void Thaw(ContainerRecord record)
    {
        var directory = ContainerManager.CgroupDirectoryOf(record);
        try
        {
            if (options.Node.CgroupV2) File.WriteAllText($"/sys/fs/cgroup{directory}/cgroup.freeze", "0");
            else File.WriteAllText($"/sys/fs/cgroup/freezer{directory}/freezer.state", "THAWED");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogThawFailed(logger, record.Id, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "container {Id} checkpointed to {Location} in {Milliseconds:0} ms")]
    private static partial void LogCheckpointed(ILogger logger, string id, string location, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "container {Id}: thawing it after a stopped checkpoint failed: {Error}")]
    private static partial void LogThawFailed(ILogger logger, string id, string error);
}

/// <summary>An unpacked checkpoint waiting for its CreateContainer, and what its config.dump says.</summary>
public sealed record PreparedRestore(string Directory, CheckpointConfig Config);
