using System.Security.Cryptography;
using Berth.Cri.V1;
using Berth.CriServer.Checkpoints;
using Berth.Sandbox;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    /// <summary>
    /// Every running container of the pod (or those <c>container_ids</c> names) checkpointed, one after another, into
    /// the directory <c>output_path</c> with the pod's configuration (<see cref="PodCheckpointFiles"/>); the pod runs on.
    /// The directory appears whole or not at all; the caller's deadline bounds the call.
    /// </summary>
    public override async Task<CheckpointPodResponse> CheckpointPod(CheckpointPodRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var output = request.OutputPath.TrimEnd('/');
        if (!Path.IsPathFullyQualified(output) || output.Length == 0 || !IsPathTheKernelTakes(output))
            throw InvalidArgument($"output_path: '{request.OutputPath}' is not an absolute path");
        if (File.Exists(output) || (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any()))
            throw new RpcException(new Status(StatusCode.AlreadyExists, $"output_path: {output} exists and is not an empty directory"));
        var pod = _sandboxes.Find(request.PodSandboxId)
                  ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod_sandbox_id: sandbox {request.PodSandboxId} not found"));
        if (pod.State != SandboxState.Ready)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"pod_sandbox_id: sandbox {pod.Id} is not ready; only a running pod can be checkpointed"));
        var containers = ContainersToCheckpoint(request, pod);

        var work = $"{output}.partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        // The directories this call makes above the checkpoint go again with it when it fails.
        var made = Path.GetDirectoryName(work)!;
        while (Path.GetDirectoryName(made) is { } parent && !Directory.Exists(parent)) made = parent;
        if (Directory.Exists(made)) made = work;
        Directory.CreateDirectory(work, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var complete = false;
        try
        {
            foreach (var container in containers)
            {
                await _containers.CheckpointAsync(container.Id, Path.Combine(work, PodCheckpointFiles.ArchiveOf(container.Name)), null, context.CancellationToken);
                PodCheckpointFiles.WriteMessage(Path.Combine(work, PodCheckpointFiles.DumpOf(container.Name)), PodCheckpointConfigs.ContainerConfigOf(container, pod));
            }
            PodCheckpointFiles.WriteMessage(Path.Combine(work, PodCheckpointFiles.PodDump), PodCheckpointConfigs.PodConfigOf(pod));
            PodCheckpointFiles.WriteOptions(work, new PodCheckpointOptions
            {
                Pod = pod.Name, Namespace = pod.Namespace, CheckpointedTime = DateTimeOffset.UtcNow, Containers = [.. containers.Select(c => c.Name)],
            });
            if (Directory.Exists(output)) Directory.Delete(output);
            Directory.Move(work, output);
            complete = true;
        }
        finally
        {
            // Only files this call wrote, never a mount: a plain recursive delete.
            if (!complete && Directory.Exists(made)) Directory.Delete(made, recursive: true);
        }
        return new CheckpointPodResponse();
    }

    private List<Runtime.Containers.ContainerRecord> ContainersToCheckpoint(CheckpointPodRequest request, SandboxRecord pod)
    {
        const Runtime.Containers.ContainerState running = Runtime.Containers.ContainerState.Running;
        if (request.ContainerIds.Count == 0)
        {
            var all = _containers.List().Where(c => c.PodId == pod.Id && c.State == running).OrderBy(c => c.CreatedAt).ToList();
            return all.Count > 0
                ? all
                : throw new RpcException(new Status(StatusCode.FailedPrecondition, $"pod_sandbox_id: sandbox {pod.Id} has no running container to checkpoint"));
        }
        var chosen = new List<Runtime.Containers.ContainerRecord>();
        for (var i = 0; i < request.ContainerIds.Count; i++)
        {
            var container = _containers.Find(request.ContainerIds[i]);
            if (container is null || container.PodId != pod.Id)
                throw new RpcException(new Status(StatusCode.NotFound, $"container_ids[{i}]: container {request.ContainerIds[i]} is not in sandbox {pod.Id}"));
            if (container.State != running)
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"container_ids[{i}]: container {container.Id} is {container.State}; only running containers can be checkpointed"));
            if (chosen.Any(c => c.Name == container.Name)) throw InvalidArgument($"container_ids[{i}]: container {container.Name} is named twice");
            chosen.Add(container);
        }
        return chosen;
    }
}
