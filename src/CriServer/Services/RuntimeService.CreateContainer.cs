using Berth.Cri.V1;
using Berth.Runtime.Containers;
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
        if (!Enum.IsDefined(config.StopSignal)) throw InvalidArgument($"config.stop_signal: {(int)config.StopSignal} is no CRI Signal");

        var sandbox = _sandboxes.Find(request.PodSandboxId)
                      ?? throw new RpcException(new Status(StatusCode.NotFound, $"pod_sandbox_id: sandbox {request.PodSandboxId} not found"));
        if (sandbox.State != SandboxState.Ready)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"pod_sandbox_id: sandbox {sandbox.Id} is not ready"));
        CheckUserNamespace(config, sandbox);
        // A checkpoint (an archive on the node, or an image holding one) restores a container, on the image it was taken of.
        var restore = await PrepareRestoreAsync(imageName, context.CancellationToken);
        try
        {
            return await CreateAsync(request, config, sandbox, imageName, restore, context.CancellationToken);
        }
        catch when (restore is not null)
        {
            ContainerManager.DiscardRestore(restore);
            throw;
        }
    }

    private async Task<CreateContainerResponse> CreateAsync(
        CreateContainerRequest request, ContainerConfig config, SandboxRecord sandbox, string imageName, PreparedRestore? restore, CancellationToken cancellationToken)
    {
        var image = restore is { Config: var checkpoint }
            ? _images.Find(checkpoint.RootfsImageRef ?? "") ?? _images.Find(checkpoint.RootfsImageName ?? "")
              ?? throw new RpcException(new Status(StatusCode.NotFound,
                  $"config.image.image: checkpoint {imageName} is of a container of image {checkpoint.RootfsImageName} ({checkpoint.RootfsImageRef}), which is not on this node; pull it first"))
            : _images.Find(imageName)
              ?? throw new RpcException(new Status(StatusCode.NotFound, $"config.image.image: image {imageName} not found; pull it first"));
        var imageConfig = await _images.ReadImageConfigAsync(image, cancellationToken);
        if (config.StopSignal == Signal.RuntimeDefault && imageConfig?.Config?.StopSignal is { Length: > 0 } imageSignal
            && !Runtime.Containers.Signals.TryParse(imageSignal, out _))
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"config.image.image: image {imageName} has StopSignal '{imageSignal}', which is no signal"));

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
            StopSignal = config.StopSignal != Signal.RuntimeDefault ? config.StopSignal.ToString().ToUpperInvariant() : imageConfig?.Config?.StopSignal is { Length: > 0 } s ? s : null,
            CdiDevices = CdiRequests.Of(config),
            RestoreFrom = restore?.Directory,
        };
        var record = await _containers.CreateAsync(
            containerRequest, ContainerMapper.Pod(sandbox), ContainerMapper.Image(image, imageConfig, restore is null ? imageName : image.RepoTags.FirstOrDefault() ?? image.Id), cancellationToken);
        await _nri.PostCreateContainerAsync(record.Id, cancellationToken);
        return new CreateContainerResponse { ContainerId = record.Id };
    }

    /// <summary>The checkpoint <paramref name="imageName"/> names, unpacked; null when it names an ordinary image.</summary>
    private async Task<PreparedRestore?> PrepareRestoreAsync(string imageName, CancellationToken cancellationToken)
    {
        if (Path.IsPathFullyQualified(imageName) && File.Exists(imageName)) return await _containers.PrepareRestoreAsync(imageName, cancellationToken);
        return _images.Find(imageName) is { IsCheckpoint: true } checkpoint
            ? await _containers.PrepareRestoreAsync(_images.CheckpointArchiveOf(checkpoint), cancellationToken)
            : null;
    }

    /// <summary>
    /// A container is in its pod's user namespace: what it states (kubelet repeats the pod's options) must be that one,
    /// and a mount's own ID mappings, which Berth makes with the pod's namespace, must be the pod's too.
    /// </summary>
    private static void CheckUserNamespace(ContainerConfig config, SandboxRecord sandbox)
    {
        var pods = SandboxMapper.UserNamespaceOf(sandbox.UserNamespace);
        if (config.Linux?.SecurityContext?.NamespaceOptions?.UsernsOptions is { } stated && !stated.Equals(pods))
            throw InvalidArgument($"config.linux.security_context.namespace_options.userns_options: {Describe(stated)} is not the pod's user namespace ({Describe(pods)})");
        for (var i = 0; i < config.Mounts.Count; i++)
        {
            var mount = config.Mounts[i];
            if (mount.UidMappings.Count + mount.GidMappings.Count == 0) continue;
            if (!mount.UidMappings.SequenceEqual(pods.Uids) || !mount.GidMappings.SequenceEqual(pods.Gids))
                throw InvalidArgument($"config.mounts[{i}]: uidMappings and gidMappings must be those of the pod's user namespace ({Describe(pods)})");
        }
    }

    private static string Describe(UserNamespace userns) => userns.Mode == NamespaceMode.Node
        ? "NODE"
        : $"{userns.Mode.ToString().ToUpperInvariant()} uids {string.Join(',', userns.Uids.Select(m => $"{m.ContainerId}:{m.HostId}:{m.Length}"))} gids {string.Join(',', userns.Gids.Select(m => $"{m.ContainerId}:{m.HostId}:{m.Length}"))}";
}
