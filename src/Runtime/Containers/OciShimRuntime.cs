using System.Text.Json;
using Berth.Native;
using Berth.Runtime.Spec;
using Berth.ShimProtocol;

namespace Berth.Runtime.Containers;

/// <summary>
/// The runtime handlers berthd drives: an OCI runtime binary driven by its command line (<see cref="OciRuntime"/>,
/// <see cref="OciExec"/>) with one berth-shim per container (<see cref="ShimClient"/>, <see cref="ShimAttach"/>).
/// </summary>
internal sealed class OciShimRuntime(OciRuntime runtime, string shimBinary, ProcessExitWatcher exits) : IContainerRuntime
{
    public string Binary => runtime.Binary;

    public Task<OciRuntimeFeatures> FeaturesAsync() => runtime.FeaturesAsync();

    public Task<CreatedContainer> CreateAsync(ContainerRecord record, string exitFile, CancellationToken cancellationToken) =>
        StartShimAsync(CommandLine(record, exitFile), cancellationToken);

    public async Task<string?> CheckpointUnsupportedAsync() =>
        await runtime.CheckpointCommandMissingAsync() is { } missing
            ? $"{runtime.Binary} cannot checkpoint: `{runtime.Binary} checkpoint` says \"{missing}\" (built without CRIU)"
            : await Checkpoints.CriuProbe.WhyNotAsync();

    public Task CheckpointAsync(string id, string imagePath, string workPath, CancellationToken cancellationToken) =>
        runtime.CheckpointAsync(id, imagePath, workPath, cancellationToken);

    public async Task<CreatedContainer> RestoreAsync(ContainerRecord record, string exitFile, string imagePath, string workPath, CancellationToken cancellationToken)
    {
        try
        {
            return await StartShimAsync(CommandLine(record, exitFile) with { RestoreFrom = imagePath, RestoreWork = workPath }, cancellationToken);
        }
        catch (ContainerRuntimeException e)
        {
            throw new ContainerRuntimeException(e.Message + OciRuntime.CriuErrors(Path.Combine(workPath, "restore.log")), e);
        }
    }

    private ShimCommandLine CommandLine(ContainerRecord record, string exitFile) => new()
    {
        Id = record.Id, Bundle = record.Bundle, Runtime = runtime.Binary, RuntimeRoot = runtime.Root, ExitFile = exitFile,
        LogPath = record.LogPath, Tty = record.Tty, Stdin = record.Stdin, StdinOnce = record.StdinOnce, SystemdCgroup = runtime.SystemdCgroup,
    };

    private async Task<CreatedContainer> StartShimAsync(ShimCommandLine commandLine, CancellationToken cancellationToken)
    {
        var created = await ShimClient.StartAsync(shimBinary, commandLine, cancellationToken);
        return created with { CgroupDirectory = ProcFs.CgroupV2Of(created.InitPid) ?? "" };
    }

    public Task StartAsync(string id, CancellationToken cancellationToken) => runtime.StartAsync(id, cancellationToken);

    public Task<bool> KillAsync(string id, string signal, bool all, CancellationToken cancellationToken) => runtime.KillAsync(id, signal, all, cancellationToken);

    public bool InitWouldDropSignal(ContainerRecord record, int signal) =>
        record.InitPid > 0 && ProcFs.DropsSignalAsNamespaceInit(record.InitPid, signal);

    public Task DeleteAsync(string id, CancellationToken cancellationToken) => runtime.DeleteAsync(id, cancellationToken);

    public Task UpdateAsync(string id, OciResources resources, CancellationToken cancellationToken) =>
        runtime.UpdateAsync(id, JsonSerializer.SerializeToUtf8Bytes(resources, OciJsonContext.Default.OciResources), cancellationToken);

    public Task<ExecResult> ExecSyncAsync(ContainerRecord record, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken) =>
        OciExec.RunCollectingAsync(runtime, record, command, timeout, cancellationToken);

    public Task<int> ExecAsync(ContainerRecord record, IReadOnlyList<string> command, InteractiveStreams io, CancellationToken cancellationToken) =>
        OciExec.RunAsync(runtime, record, command, io, cancellationToken);

    public Task AttachAsync(ContainerRecord record, InteractiveStreams io, CancellationToken cancellationToken) =>
        ShimAttach.RelayAsync(record, io, cancellationToken);

    public Task ReopenLogAsync(ContainerRecord record, CancellationToken cancellationToken) =>
        ShimClient.RequestAsync(record.Bundle, ShimControlRequest.Reopen, cancellationToken);

    public bool IsShimAlive(ShimProcess shim) => ProcFs.StartTimeOf(shim.Pid) == shim.StartTime;

    public void WatchShim(ShimProcess shim, Action gone) => exits.Watch(shim.Pid, shim.StartTime, gone);

    public void KillShim(string id, ShimProcess? known)
    {
        if (known is not null)
        {
            if (IsShimAlive(known)) ProcFs.Kill(known.Pid);
            return;
        }
        foreach (var pid in ProcFs.FindByCmdline(ShimCommandLine.CmdlinePrefix(shimBinary, id))) ProcFs.Kill(pid);
    }
}
