using Berth.Cri.V1;
using Berth.CriServer.Checkpoints;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    /// <summary>
    /// A pod checkpoint (CheckpointPod's directory) brought back: a new pod from <c>config</c>, or the checkpointed one's,
    /// and in it each container restored from its archive and started, with kubelet's config for it from
    /// <c>container_configs</c> (matched by name) or the checkpointed one's. A failure removes the whole new pod.
    /// </summary>
    public override async Task<RestorePodResponse> RestorePod(RestorePodRequest request, ServerCallContext context)
    {
        var directory = request.CheckpointPath.TrimEnd('/');
        if (!Path.IsPathFullyQualified(directory) || directory.Length == 0 || !IsPathTheKernelTakes(directory))
            throw InvalidArgument($"checkpoint_path: '{request.CheckpointPath}' is not an absolute path");
        if (!Directory.Exists(directory))
            throw new RpcException(new Status(StatusCode.NotFound, $"checkpoint_path: {directory} is no directory"));
        PodCheckpointOptions options;
        PodSandboxConfig podConfig;
        List<ContainerConfig> configs;
        try
        {
            options = PodCheckpointFiles.ReadOptions(directory);
            podConfig = request.Config ?? PodCheckpointFiles.ReadMessage(Path.Combine(directory, PodCheckpointFiles.PodDump), PodSandboxConfig.Parser);
            configs = [.. options.Containers.Select(name => ContainerConfigFor(request, directory, name))];
        }
        catch (InvalidDataException e)
        {
            throw InvalidArgument($"checkpoint_path: {directory} is no pod checkpoint Berth can restore: {e.Message}");
        }
        for (var i = 0; i < request.ContainerConfigs.Count; i++)
        {
            if (!options.Containers.Contains(request.ContainerConfigs[i].Metadata?.Name ?? ""))
                throw InvalidArgument($"container_configs[{i}].metadata.name: '{request.ContainerConfigs[i].Metadata?.Name}' is not in the checkpoint, which has {string.Join(", ", options.Containers)}");
        }

        var podId = (await RunPodSandbox(new RunPodSandboxRequest { Config = podConfig, RuntimeHandler = request.RuntimeHandler }, context)).PodSandboxId;
        var response = new RestorePodResponse { PodSandboxId = podId };
        try
        {
            for (var i = 0; i < configs.Count; i++)
            {
                var config = configs[i];
                config.Image = new ImageSpec { Image = Path.Combine(directory, PodCheckpointFiles.ArchiveOf(options.Containers[i])) };
                var id = (await CreateContainer(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = podConfig }, context)).ContainerId;
                await StartContainer(new StartContainerRequest { ContainerId = id }, context);
                response.RestoredContainers.Add(new RestoredContainer { Name = options.Containers[i], ContainerId = id });
            }
        }
        catch
        {
            await _containers.StopPodAsync(podId, CancellationToken.None);
            await _sandboxes.StopAsync(podId, CancellationToken.None);
            await _containers.RemovePodAsync(podId, CancellationToken.None);
            await _sandboxes.RemoveAsync(podId, CancellationToken.None);
            throw;
        }
        return response;
    }

    private static ContainerConfig ContainerConfigFor(RestorePodRequest request, string directory, string name) =>
        request.ContainerConfigs.FirstOrDefault(c => c.Metadata?.Name == name)?.Clone()
        ?? PodCheckpointFiles.ReadMessage(Path.Combine(directory, PodCheckpointFiles.DumpOf(name)), ContainerConfig.Parser);
}
