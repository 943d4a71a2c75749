using System.Formats.Tar;
using Berth.Runtime.Checkpoints;
using Berth.Runtime.Containers;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>Checkpoint, and a container from a checkpoint, against the fake runtime: when the restore runs, what a failure leaves, restarts.</summary>
public sealed class ContainerRestoreTests : IDisposable
{
    private readonly LifecycleBed _bed = new();
    private readonly string _archives = Directory.CreateTempSubdirectory("berth-checkpoints-").FullName;

    public void Dispose()
    {
        _bed.Dispose();
        Directory.Delete(_archives, recursive: true);
    }

    private async Task<string> CheckpointAsync()
    {
        var source = await _bed.RunningAsync("source");
        var archive = Path.Combine(_archives, "source.tar");
        await _bed.Manager.CheckpointAsync(source.Id, archive, null, CancellationToken.None);
        return archive;
    }

    private async Task<ContainerRecord> CreateFromAsync(string archive, string name = "restored")
    {
        var prepared = await _bed.Manager.PrepareRestoreAsync(archive, CancellationToken.None);
        Assert.Equal("source", prepared.Config.Name);
        return await _bed.CreateAsync(LifecycleBed.Request(name) with { RestoreFrom = prepared.Directory });
    }

    [Fact]
    public async Task A_checkpoint_leaves_the_container_running_and_writes_the_archive_whole()
    {
        var archive = await CheckpointAsync();
        var names = new List<string>();
        await using (var reader = new TarReader(File.OpenRead(archive)))
        {
            while (await reader.GetNextEntryAsync() is { } entry) names.Add(entry.Name.TrimStart('.', '/'));
        }
        Assert.Superset(new HashSet<string> { "checkpoint/pages-1.img", "config.dump", "spec.dump", "rootfs-diff.tar", "deleted.files", "dump.log", "status" }, names.ToHashSet());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(archive));
        Assert.Single(Directory.GetFiles(_archives));
        Assert.All(_bed.Manager.List(), c => Assert.Equal(ContainerState.Running, c.State));
    }

    [Fact]
    public async Task A_failed_checkpoint_leaves_no_archive_and_no_work()
    {
        var source = await _bed.RunningAsync("source");
        _bed.Runtime.Failures["checkpoint"] = new ContainerPreconditionException("CRIU: Connected TCP socket");
        await Assert.ThrowsAsync<ContainerPreconditionException>(() =>
            _bed.Manager.CheckpointAsync(source.Id, Path.Combine(_archives, "x.tar"), null, CancellationToken.None));
        Assert.Empty(Directory.GetFileSystemEntries(_archives));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_bed.Options.DataDirectory, "checkpoints")));
        Assert.Equal(ContainerState.Running, _bed.Manager.Get(source.Id)!.State);
    }

    [Fact]
    public async Task A_container_from_a_checkpoint_is_restored_at_start_through_a_new_shim()
    {
        var record = await CreateFromAsync(await CheckpointAsync());
        Assert.Equal(ContainerState.Created, record.State);
        Assert.Empty(_bed.Runtime.CallsFor(record.Id));
        await _bed.Manager.StartAsync(record.Id, CancellationToken.None);
        var running = _bed.Manager.Get(record.Id)!;
        Assert.Equal((ContainerState.Running, (string?)null), (running.State, running.RestoreFrom));
        Assert.NotNull(running.Shim);
        Assert.Equal(["restore"], _bed.Runtime.CallsFor(record.Id));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_bed.Options.DataDirectory, "restores")));
    }

    [Fact]
    public async Task A_restore_that_fails_is_FailedPrecondition_and_leaves_an_exited_container()
    {
        var record = await CreateFromAsync(await CheckpointAsync());
        _bed.Runtime.Failures["restore"] = new ContainerRuntimeException("CRIU: can't read pstree.img");
        var e = await Assert.ThrowsAsync<ContainerPreconditionException>(() => _bed.Manager.StartAsync(record.Id, CancellationToken.None));
        Assert.Contains("could not be restored from its checkpoint: CRIU: can't read pstree.img", e.Message, StringComparison.Ordinal);
        var exited = _bed.Manager.Get(record.Id)!;
        Assert.Equal((ContainerState.Exited, "StartError"), (exited.State, exited.Reason));
        Assert.Equal(["restore", "delete"], _bed.Runtime.CallsFor(record.Id));
        await _bed.Manager.RemoveAsync(record.Id, CancellationToken.None);
        _bed.AssertNoTraceOf(record);
    }

    [Fact]
    public async Task A_stop_before_the_restore_exits_it_with_no_process_to_stop()
    {
        var record = await CreateFromAsync(await CheckpointAsync());
        await _bed.Manager.StopAsync(record.Id, TimeSpan.FromSeconds(10), CancellationToken.None);
        var exited = _bed.Manager.Get(record.Id)!;
        Assert.Equal((ContainerState.Exited, 255), (exited.State, exited.ExitCode));
        Assert.Contains("before it was restored", exited.Message, StringComparison.Ordinal);
        // No signal and no restore: only the runtime's idempotent delete of a container it never had.
        Assert.Equal(["delete"], _bed.Runtime.CallsFor(record.Id));
    }

    [Fact]
    public async Task A_restart_keeps_a_container_waiting_for_its_restore_and_ends_one_whose_checkpoint_is_gone()
    {
        var archive = await CheckpointAsync();
        var kept = await CreateFromAsync(archive);
        var lost = await CreateFromAsync(archive, "lost");
        Directory.Delete(_bed.Manager.Get(lost.Id)!.RestoreFrom!, recursive: true);
        await _bed.RestartAsync();
        Assert.Equal(ContainerState.Created, _bed.Manager.Get(kept.Id)!.State);
        await _bed.Manager.StartAsync(kept.Id, CancellationToken.None);
        Assert.Equal(ContainerState.Running, _bed.Manager.Get(kept.Id)!.State);
        var ended = _bed.Manager.Get(lost.Id)!;
        Assert.Equal((ContainerState.Exited, 255), (ended.State, ended.ExitCode));
        Assert.Contains("checkpoint was gone", ended.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_that_is_no_checkpoint_is_refused_and_nothing_is_left()
    {
        var notOne = Path.Combine(_archives, "plain.tar");
        await TarFile.CreateFromDirectoryAsync(_archives, notOne, includeBaseDirectory: false);
        var e = await Assert.ThrowsAsync<ContainerRequestException>(() => _bed.Manager.PrepareRestoreAsync(notOne, CancellationToken.None));
        Assert.Contains("no checkpoint archive", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_bed.Options.DataDirectory, "restores")));
    }
}

/// <summary>The image store's unpacker stands in as a plain tar extraction; its care is the image store's tests'.</summary>
internal sealed class PlainTarUnpacker : IArchiveUnpacker
{
    public async Task UnpackFileAsync(string archive, string directory, CancellationToken cancellationToken)
    {
        await using var file = File.OpenRead(archive);
        await UnpackAsync(file, directory, cancellationToken);
    }

    public async Task UnpackAsync(Stream tar, string directory, CancellationToken cancellationToken)
    {
        try
        {
            await TarFile.ExtractToDirectoryAsync(tar, directory, overwriteFiles: true, cancellationToken);
        }
        catch (FormatException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }
}
