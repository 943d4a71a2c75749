using Berth.Cri.V1;
using Berth.Sandbox;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class RuntimeService
{
    public override async Task<RunPodSandboxResponse> RunPodSandbox(RunPodSandboxRequest request, ServerCallContext context)
    {
        var config = request.Config ?? throw InvalidArgument("config is required");
        var metadata = config.Metadata ?? throw InvalidArgument("config.metadata is required");
        var namespaces = config.Linux?.SecurityContext?.NamespaceOptions;
        if (namespaces?.Network == NamespaceMode.Target || namespaces?.Ipc == NamespaceMode.Target)
            throw InvalidArgument("config.linux.security_context.namespace_options: TARGET applies to pid only");
        if (namespaces is not null)
        {
            foreach (var (field, mode) in new[] { ("network", namespaces.Network), ("pid", namespaces.Pid), ("ipc", namespaces.Ipc) })
            {
                // An enum value this API does not know would otherwise fall to some default (a PID namespace of the pod's own).
                if (!Enum.IsDefined(mode))
                    throw InvalidArgument($"config.linux.security_context.namespace_options.{field}: {(int)mode} is not a NamespaceMode");
            }
        }
        foreach (var port in config.PortMappings)
        {
            if (!Enum.IsDefined(port.Protocol))
                throw InvalidArgument($"config.port_mappings.protocol: {(int)port.Protocol} is not a Protocol");
        }

        var record = await _sandboxes.RunAsync(new SandboxRequest
        {
            Name = metadata.Name,
            Namespace = metadata.Namespace,
            Uid = metadata.Uid,
            Attempt = metadata.Attempt,
            Hostname = config.Hostname,
            LogDirectory = string.IsNullOrEmpty(config.LogDirectory) ? null : config.LogDirectory,
            Dns = config.DnsConfig is { } dns ? new DnsSettings([.. dns.Servers], [.. dns.Searches], [.. dns.Options]) : null,
            PortMappings = [.. config.PortMappings.Select(p => new Sandbox.PortMapping
            {
                Protocol = p.Protocol switch { Protocol.Udp => "udp", Protocol.Sctp => "sctp", _ => "tcp" },
                ContainerPort = p.ContainerPort,
                HostPort = p.HostPort,
                HostIp = p.HostIp,
            })],
            Labels = config.Labels,
            Annotations = config.Annotations,
            HostNetwork = namespaces?.Network == NamespaceMode.Node,
            HostIpc = namespaces?.Ipc == NamespaceMode.Node,
            Pid = (namespaces?.Pid ?? NamespaceMode.Pod) switch
            {
                NamespaceMode.Node => PidMode.Node,
                NamespaceMode.Container => PidMode.Container,
                _ => PidMode.Pod,
            },
            Privileged = config.Linux?.SecurityContext?.Privileged ?? false,
            Sysctls = config.Linux?.Sysctls ?? new Google.Protobuf.Collections.MapField<string, string>(),
            CgroupParent = string.IsNullOrEmpty(config.Linux?.CgroupParent) ? null : config.Linux.CgroupParent,
            RuntimeHandler = request.RuntimeHandler,
            UserNamespace = UserNamespaceOf(namespaces?.UsernsOptions),
        }, context.CancellationToken);
        try
        {
            await _nri.RunPodSandboxAsync(record, context.CancellationToken);
        }
        catch (Exception e) when (e is Berth.Nri.Adaptation.NriException or OperationCanceledException)
        {
            // Nothing is left of a pod NRI refused: plugins that saw it start see it go, and the pod is undone.
            await _nri.StopPodSandboxAsync(record, CancellationToken.None);
            await _nri.RemovePodSandboxAsync(record, CancellationToken.None);
            await _sandboxes.StopAsync(record.Id, CancellationToken.None);
            await _sandboxes.RemoveAsync(record.Id, CancellationToken.None);
            if (e is OperationCanceledException) throw;
            throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message));
        }
        return new RunPodSandboxResponse { PodSandboxId = record.Id };
    }

    /// <summary>
    /// NODE (or none) is the node's user namespace; POD is one of the pod's own with one UID and one GID range, the shape
    /// kubelet sends. CONTAINER and TARGET have no meaning for a pod's user namespace, as in containerd and CRI-O.
    /// </summary>
    private static UserNamespaceMapping? UserNamespaceOf(UserNamespace? options)
    {
        const string field = "config.linux.security_context.namespace_options.userns_options";
        if (options is null) return null;
        if (!Enum.IsDefined(options.Mode)) throw InvalidArgument($"{field}.mode: {(int)options.Mode} is not a NamespaceMode");
        if (options.Mode == NamespaceMode.Node)
        {
            return options.Uids.Count + options.Gids.Count == 0
                ? null
                : throw InvalidArgument($"{field}: mode NODE takes no uids or gids mappings (the node's user namespace has its own)");
        }
        if (options.Mode != NamespaceMode.Pod)
            throw InvalidArgument($"{field}.mode: {options.Mode.ToString().ToUpperInvariant()} is not supported for a user namespace; only POD and NODE are");
        foreach (var (name, mappings) in new[] { ("uids", options.Uids), ("gids", options.Gids) })
        {
            if (mappings.Count != 1)
                throw InvalidArgument($"{field}.{name}: {mappings.Count} mappings; a pod user namespace takes exactly one");
        }
        return new UserNamespaceMapping(
            new IdMapping(options.Uids[0].ContainerId, options.Uids[0].HostId, options.Uids[0].Length),
            new IdMapping(options.Gids[0].ContainerId, options.Gids[0].HostId, options.Gids[0].Length));
    }
}
