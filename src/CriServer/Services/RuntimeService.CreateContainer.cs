using Berth.Cri.V1;
using Berth.Sandbox;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<CreateContainerResponse> CreateContainer(CreateContainerRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw InvalidArgument("pod_sandbox_id is required");
        var config = request.Config ?? throw InvalidArgument("config is required");
        if (config.Metadata is null || string.IsNullOrEmpty(config.Metadata.Name)) throw InvalidArgument("config.metadata.name is required");
        var imageName = config.Image?.Image;
        if (string.IsNullOrEmpty(imageName)) throw InvalidArgument("config.image.image is required");

        var sandbox = _sandboxes.Find(request.PodSandboxId)
                      ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod_sandbox_id: sandbox {request.PodSandboxId} not found"));
        if (sandbox.State != SandboxState.Ready)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"pod_sandbox_id: sandbox {sandbox.Id} is not ready"));
        var image = _images.Find(imageName)
                    ?? throw new RpcException(new Status(StatusCode.NotFound, $"config.image.image: image {imageName} not found; pull it first"));
        var imageConfig = await _images.ReadImageConfigAsync(image, context.CancellationToken);

        var logPath = string.IsNullOrEmpty(sandbox.LogDirectory) || string.IsNullOrEmpty(config.LogPath)
            ? null
            : Path.Combine(sandbox.LogDirectory, config.LogPath);
        if (logPath is not null && !IsPathTheKernelTakes(logPath))
            throw InvalidArgument($"log_path: '{(config.LogPath.Length > 64 ? config.LogPath[..64] + "…" : config.LogPath)}' under the pod's log directory is no path Linux can open (NUL, a name over 255 bytes, or over 4096 in all)");

        Runtime.Spec.ImageMountSource ImageVolume(string field, string name) => _images.Find(name) is { } found
            ? new Runtime.Spec.ImageMountSource { ImageRef = found.Id, LowerDirs = [.. _images.LowerDirs(found)] }
            : throw new RpcException(new Status(StatusCode.NotFound, $"{field}: image {name} not found; pull it first"));
        var containerRequest = ContainerMapper.ToRequest(config, _containers.Get, ImageVolume) with
        {
            Attempt = config.Metadata.Attempt,
            PodNameKey = sandbox.NameKey,
            ImageSpec = imageName,
            LowerDirs = _images.LowerDirs(image),
            LogPath = logPath,
            Stdin = config.Stdin,
            StdinOnce = config.StdinOnce,
            RuntimeHandler = sandbox.RuntimeHandler,
            Labels = config.Labels,
            StopSignal = config.StopSignal != Signal.RuntimeDefault ? config.StopSignal.ToString().ToUpperInvariant() : imageConfig?.Config?.StopSignal,
        };
        var record = await _containers.CreateAsync(
            containerRequest, ContainerMapper.Pod(sandbox), ContainerMapper.Image(image, imageConfig, imageName), context.CancellationToken);
        return new CreateContainerResponse { ContainerId = record.Id };
    }
}
