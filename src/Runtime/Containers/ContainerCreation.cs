using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Berth.Runtime.Spec;
using Microsoft.Extensions.Logging;

namespace Berth.Runtime.Containers;

/// <summary>
/// CreateContainer: the request is checked, the name reserved by a Creating record, then the bundle, rootfs, image
/// volumes, spec and shim are made in that order. A failure at any step undoes every earlier one; a crash leaves the
/// Creating record, which recovery undoes.
/// </summary>
internal sealed partial class ContainerCreation(
    ContainerOptions options, RuntimeHandlers handlers, IRootfsMounter rootfs, ContainerTable table, ContainerTeardown teardown, Cdi.CdiRegistry devices, ILogger logger)
{
    /// <summary>What changes a built spec before the runtime sees it; none changes nothing.</summary>
    public IContainerSpecAdjuster? Adjuster { get; set; }

    /// <summary>
    /// The adjuster's spec, with the CDI devices it asked for injected as the request's own are, and the node's
    /// oom_score_adj floor kept whatever it set.
    /// </summary>
    private async Task<OciSpec> AdjustAsync(IContainerSpecAdjuster adjuster, ContainerRecord record, ContainerRequest request, OciSpec spec, PodSettings pod, CancellationToken cancellationToken)
    {
        var adjusted = await adjuster.AdjustAsync(record, spec, cancellationToken);
        spec = adjusted.Spec;
        if (adjusted.CdiDevices.Count > 0)
        {
            if (pod.UserNamespace is not null)
                throw new ContainerPreconditionException($"NRI plugins asked for CDI devices {string.Join(", ", adjusted.CdiDevices)} in a pod with its own user namespace, which Berth does not inject");
            var cdi = await ContainerCdi.ResolveAsync(devices, handlers, request with { CdiDevices = adjusted.CdiDevices });
            spec = CdiSpecEdits.Apply(spec, cdi);
        }
        if (spec.Process.OomScoreAdj is { } oom && options.Node.OomScoreAdjFloor is { } floor && oom < floor)
            spec = spec with { Process = spec.Process with { OomScoreAdj = floor } };
        return spec;
    }

    public async Task<ContainerRecord> CreateAsync(ContainerRequest request, PodSettings pod, ImageSettings image, CancellationToken cancellationToken)
    {
        var runtime = await CheckAsync(request, pod);
        request = request with { Cdi = await ContainerCdi.ResolveAsync(devices, handlers, request) };
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var record = NewRecord(id, request, pod, image);

        // The record first: a crash from here on leaves a Creating record that recovery undoes.
        var watch = Stopwatch.StartNew();
        table.Reserve(record);
        var reserved = watch.Elapsed.TotalMilliseconds;
        var step = "creating missing host paths";
        using var phases = new PhaseSpans();
        try
        {
            foreach (var mount in request.Mounts)
            {
                // As kubelet expects of a runtime: a host path that is not there is made a directory.
                if (mount.Image is null && !Path.Exists(mount.HostPath)) Directory.CreateDirectory(mount.HostPath);
            }
            step = "preparing the bundle";
            // Searchable, not listable: a pod user namespace's root reaches its rootfs and idmapped copies through it.
            Directory.CreateDirectory(record.Bundle, SearchableDirectory);
            if (request.RestoreFrom is { } checkpoint)
            {
                step = "taking in the checkpoint's writable layer";
                // The container owns the unpacked checkpoint from here (its teardown removes it with its directory), on
                // the data dir's disk: CRIU's images are as large as the memory dumped, too large for the state dir's tmpfs.
                var restore = Path.Combine(record.Directory, RestoreDirectory);
                Directory.CreateDirectory(record.Directory);
                Directory.Move(checkpoint, restore);
                record = record with { RestoreFrom = restore };
                table.Update(record);
                await ContainerRestore.PrepareWritableLayerAsync(restore, ContainerManager.WritableLayerOf(record), options.ArchiveUnpacker!, cancellationToken);
            }
            step = "mounting the root filesystem";
            phases.Next("container.rootfs");
            var rootfsPath = Path.Combine(record.Bundle, "rootfs");
            var userns = pod.UserNamespace;
            rootfs.Mount(request.LowerDirs, ContainerManager.WritableLayerOf(record), ContainerManager.WorkDirectoryOf(record), rootfsPath, LayersIdmap(record, userns, "rootfs"));
            step = "mounting image volumes";
            if (request.Mounts.Any(m => m.Image is not null))
            {
                request = request with { Mounts = MountImageVolumes(record, request.Mounts, userns) };
                record = record with { Mounts = [.. request.Mounts] };
            }
            if (userns is not null)
            {
                step = "making idmapped copies of host paths for the pod's user namespace";
                request = IdmapBinds(record, request, userns);
                request = request with { Cdi = ContainerCdi.ForUserNamespace(request.Cdi, ContainerTeardown.IdmappedOf(record), userns) };
            }

            step = "building the OCI spec";
            phases.Next("container.spec");
            var volumes = VolumeDirectories(record, image, userns);
            OciSpec spec;
            try
            {
                spec = OciSpecBuilder.Build(id, request, pod, image with { Volumes = volumes }, options.Node, ReadUsers(rootfsPath));
            }
            catch (ContainerSpecException e)
            {
                throw new ContainerRequestException(e.Message);
            }
            if (Adjuster is { } adjuster)
            {
                step = "adjusting the spec (NRI)";
                phases.Next("container.nri");
                spec = await AdjustAsync(adjuster, record, request, spec, pod, cancellationToken);
            }
            if (record.RestoreFrom is { } restoreDirectory) spec = ContainerRestore.PlaceInOwnCgroup(spec, restoreDirectory);
            step = "copying the image's content into its volumes";
            phases.Next("container.bundle");
            foreach (var (volume, hostDirectory) in volumes)
            {
                // A volume that a CRI mount replaced is not in the spec, and gets nothing.
                if (spec.Mounts.Any(m => m.Source == hostDirectory)) ImageVolume.Populate(rootfsPath, volume, hostDirectory);
            }
            // The owner's alone: the spec holds the container's environment, which may hold its secrets.
            await using (var file = new FileStream(Path.Combine(record.Bundle, "config.json"), new FileStreamOptions
                         {
                             Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                         }))
            {
                await file.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(spec, OciJsonContext.Default.OciSpec), cancellationToken);
            }
            if (record.LogPath is { } log) Directory.CreateDirectory(Path.GetDirectoryName(log)!);

            step = "creating the container (berth-shim, runtime create)";
            phases.Next("container.shim");
            var prepared = watch.Elapsed.TotalMilliseconds;
            // A restore creates and starts at once, so a container from a checkpoint gets its shim at StartContainer.
            var created = record.RestoreFrom is null
                ? await runtime.CreateAsync(record, teardown.ExitFileOf(id), cancellationToken)
                : new CreatedContainer(null, 0);
            var shimmed = watch.Elapsed.TotalMilliseconds;
            record = record with
            {
                State = ContainerState.Created, Shim = created.Shim, InitPid = created.InitPid, CgroupsPath = spec.Linux?.CgroupsPath ?? "", User = spec.Process.User,
                CgroupDirectory = options.Node.CgroupV2 && created.CgroupDirectory.Length > 0
                    ? created.CgroupDirectory
                    : Cgroups.CgroupPaths.Resolve(spec.Linux?.CgroupsPath ?? ""),
            };
            phases.Dispose();
            table.Commit(record, ContainerChangeKind.Created);
            LogCreated(logger, id, watch.Elapsed.TotalMilliseconds, reserved, prepared - reserved, shimmed - prepared);
            return record;
        }
        catch (Exception e)
        {
            phases.Fail(e);
            phases.Dispose();
            await teardown.RollBackAsync(record);
            // A cancelled create (the caller went away) is reported as such, not as a failure of the host.
            if (e is ContainerException or OperationCanceledException) throw;
            throw new ContainerRuntimeException($"CreateContainer failed while {step}: {e.Message}", e);
        }
    }

    /// <summary>rwx--x--x: others may pass through to a path they know, and list nothing.</summary>
    internal const UnixFileMode SearchableDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                                                      | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>Where a container from a checkpoint keeps it, in its directory, until StartContainer has restored it.</summary>
    internal const string RestoreDirectory = "checkpoint-restore";

    /// <summary>What can be refused before anything is made: the handler, what it cannot do, what a pod user namespace cannot take.</summary>
    private async Task<IContainerRuntime> CheckAsync(ContainerRequest request, PodSettings pod)
    {
        if (request.RestoreFrom is not null && pod.UserNamespace is not null)
            throw new ContainerPreconditionException("a pod with its own user namespace cannot take a container from a checkpoint: CRIU 3.17 restores no idmapped mounts");
        if (request.RestoreFrom is not null && request.Tty)
            throw new ContainerRequestException("tty: a container from a checkpoint has the checkpointed container's pipes as stdio, and cannot have a terminal");
        for (var i = 0; i < request.Mounts.Count && pod.UserNamespace is not null; i++)
        {
            // A host path reaches a user namespace through an idmapped copy of it, which later host mounts do not propagate to.
            if (request.Mounts[i].Propagation != MountPropagation.Private)
                throw new ContainerRequestException($"mounts[{i}].propagation: a pod with its own user namespace takes private mounts only");
        }
        var runtime = handlers.Find(request.RuntimeHandler)
                      ?? throw new ContainerRequestException($"runtime_handler: '{request.RuntimeHandler}' is not a configured runtime handler");
        for (var i = 0; i < request.Mounts.Count; i++)
        {
            if (request.Mounts[i].RecursiveReadonly && await handlers.FeaturesAsync(request.RuntimeHandler) is { RecursiveReadonlyMounts: false })
                throw new ContainerRequestException(
                    $"mounts[{i}].recursive_read_only: runtime handler '{request.RuntimeHandler}' ({runtime.Binary}) cannot make recursive read-only mounts on this node");
        }
        return runtime;
    }

    private ContainerRecord NewRecord(string id, ContainerRequest request, PodSettings pod, ImageSettings image) => new()
    {
        Id = id,
        PodId = pod.Id,
        Name = request.Name,
        Attempt = request.Attempt,
        NameKey = $"{request.Name}_{request.Attempt}_{request.PodNameKey}",
        State = ContainerState.Creating,
        CreatedAt = ContainerTable.Now(),
        Image = request.ImageSpec,
        ImageRef = image.ImageRef,
        ImageName = image.ImageName,
        LogPath = request.LogPath,
        Labels = new(request.Labels),
        Annotations = new(request.Annotations),
        Mounts = [.. request.Mounts],
        Resources = request.Resources,
        RuntimeHandler = request.RuntimeHandler,
        Tty = request.Tty,
        Stdin = request.Stdin,
        StdinOnce = request.StdinOnce,
        StopSignal = request.StopSignal,
        LowerDirs = [.. request.LowerDirs],
        Bundle = Path.Combine(options.BundleDirectory, id),
        Directory = Path.Combine(options.DataDirectory, id),
    };

    /// <summary>With a pod user namespace, a mount's layers go through idmapped copies made for the moment under the container's idmap directory.</summary>
    private static LayerIdmap? LayersIdmap(ContainerRecord record, PodUserNamespace? userns, string group) =>
        userns is null ? null : new LayerIdmap(userns, Path.Combine(ContainerTeardown.IdmappedOf(record), group));

    /// <summary>
    /// Host paths reach a pod in its own user namespace through idmapped copies (KEP-127): the node's 0 is the pod's
    /// root there, and what the pod's root writes is the node's 0's. Image volumes have idmapped layers already, and the
    /// image's VOLUME directories hold what the idmapped rootfs showed, so neither is copied. The record keeps the host
    /// paths as asked, for ContainerStatus.
    /// </summary>
    private static ContainerRequest IdmapBinds(ContainerRecord record, ContainerRequest request, PodUserNamespace userns)
    {
        var directory = ContainerTeardown.IdmappedOf(record);
        var mounts = new List<ContainerMount>(request.Mounts.Count);
        for (var i = 0; i < request.Mounts.Count; i++)
        {
            var mount = request.Mounts[i];
            if (mount.Image is not null)
            {
                mounts.Add(mount);
                continue;
            }
            var copy = Path.Combine(directory, "binds", i.ToString(CultureInfo.InvariantCulture));
            try
            {
                IdmappedMount.Create(mount.HostPath, copy, userns.Path, recursive: true, readOnly: mount.Readonly);
            }
            catch (IOException e)
            {
                throw new ContainerRequestException($"mounts[{i}].host_path: '{mount.HostPath}' cannot be idmapped for the pod's user namespace: {e.Message}");
            }
            mounts.Add(mount with { HostPath = copy });
        }
        // The pod's hostname, hosts, resolv.conf and /dev/shm need no copy: the sandbox made them its root's.
        return request with { Mounts = mounts };
    }

    /// <summary>Each image volume's overlay, under the container's directory (<see cref="ContainerTeardown"/> unmounts them), and the host path of its sub path.</summary>
    private List<ContainerMount> MountImageVolumes(ContainerRecord record, IReadOnlyList<ContainerMount> mounts, PodUserNamespace? userns)
    {
        var result = new List<ContainerMount>(mounts.Count);
        for (var i = 0; i < mounts.Count; i++)
        {
            if (mounts[i].Image is not { } source)
            {
                result.Add(mounts[i]);
                continue;
            }
            var target = Path.Combine(ContainerTeardown.ImageMountsOf(record), i.ToString(CultureInfo.InvariantCulture));
            rootfs.MountReadOnly(source.LowerDirs, target, LayersIdmap(record, userns, "image-" + i.ToString(CultureInfo.InvariantCulture)));
            // Links and ".." are resolved with the image as their root, so a sub path cannot leave it.
            var hostPath = source.SubPath.Length == 0 ? target : ImageVolume.ResolveInRoot(target, source.SubPath);
            if (!Path.Exists(hostPath))
                throw new ContainerRequestException($"mounts[{i}].image_sub_path: '{source.SubPath}' does not exist in image {source.ImageRef}");
            result.Add(mounts[i] with { HostPath = hostPath });
        }
        return result;
    }

    /// <summary>
    /// A directory under the container's own for each of the image's VOLUMEs; in a pod user namespace it is its root's
    /// until the image's own directory there gives it an owner.
    /// </summary>
    private static Dictionary<string, string> VolumeDirectories(ContainerRecord record, ImageSettings image, PodUserNamespace? userns)
    {
        var volumes = new Dictionary<string, string>(StringComparer.Ordinal);
        var index = 0;
        foreach (var volume in image.Volumes.Keys)
        {
            var hostDirectory = Path.Combine(record.Directory, "volumes", (index++).ToString(CultureInfo.InvariantCulture));
            Directory.CreateDirectory(hostDirectory);
            if (userns is not null) Native.FileOwner.Set(hostDirectory, userns.HostRoot.Uid, userns.HostRoot.Gid);
            volumes[volume] = hostDirectory;
        }
        return volumes;
    }

    private static UserDatabase ReadUsers(string rootfs)
    {
        static string? Read(string path)
        {
            // A link could point out of the rootfs, to the node's own files.
            var info = new FileInfo(path);
            return info.Exists && info.LinkTarget is null && info.Length < 4 * 1024 * 1024 ? File.ReadAllText(path) : null;
        }

        return UserDatabase.Parse(Read(Path.Combine(rootfs, "etc", "passwd")), Read(Path.Combine(rootfs, "etc", "group")));
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "container {Id} created in {TotalMs:F1} ms (record {RecordMs:F1}, rootfs and spec {PrepareMs:F1}, shim and runtime create {ShimMs:F1})")]
    private static partial void LogCreated(ILogger logger, string id, double totalMs, double recordMs, double prepareMs, double shimMs);
}
