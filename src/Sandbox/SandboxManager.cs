using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Berth.Cni;
using Microsoft.Extensions.Logging;

namespace Berth.Sandbox;

/// <summary>Where sandboxes keep their records (persistent) and their namespaces and pod files (volatile).</summary>
public sealed record SandboxOptions
{
    public required string RecordDirectory { get; init; }
    public required string StateDirectory { get; init; }

    /// <summary>The runtime handler names the node offers; "" means the default handler.</summary>
    public IReadOnlySet<string> RuntimeHandlers { get; init; } = new HashSet<string> { "" };

    /// <summary>berth-shim, which plays the infra process of pods that share a PID namespace.</summary>
    public required string ShimBinary { get; init; }
}

/// <summary>
/// Pod sandboxes: pinned namespaces wired by CNI. Every step of RunPodSandbox is undone if a later one fails,
/// and a record in the Creating state found at startup (a crash mid-run) is undone the same way.
/// </summary>
public sealed partial class SandboxManager
{
    private readonly SandboxOptions _options;
    private readonly IPodNetwork _network;
    private readonly IPodHost _host;
    private readonly Berth.Records.RecordStore<SandboxRecord> _store;
    private readonly ILogger _logger;

    public SandboxManager(SandboxOptions options, CniNetwork network, ILogger<SandboxManager> logger)
        : this(options, network, new NodePodHost(options.ShimBinary), logger)
    {
    }

    internal SandboxManager(SandboxOptions options, IPodNetwork network, IPodHost host, ILogger logger)
    {
        _options = options;
        _network = network;
        _host = host;
        _logger = logger;
        _store = new(options.RecordDirectory, SandboxJsonContext.Default.SandboxRecord, r => r.Id, r => r.NameKey, "sandbox", logger);
        Directory.CreateDirectory(options.StateDirectory);
    }

    private volatile string? _podCidr;

    public IReadOnlyList<SandboxRecord> List() => [.. _store.List().Select(Refresh)];

    /// <summary>The node's pod CIDR from kubelet (UpdateRuntimeConfig), offered to IPAM plugins as the ipRanges capability.</summary>
    public void SetPodCidr(string? cidr)
    {
        if (!string.IsNullOrEmpty(cidr) && !System.Net.IPNetwork.TryParse(cidr, out _))
            throw new SandboxRequestException($"runtime_config.network_config.pod_cidr: '{cidr}' is not a CIDR");
        _podCidr = string.IsNullOrEmpty(cidr) ? null : cidr;
    }

    public SandboxRecord? Get(string id) => _store.Get(id) is { } record ? Refresh(record) : null;

    /// <summary>By ID, else by a unique prefix of one (crictl passes abbreviated IDs through); null when none or several match.</summary>
    public SandboxRecord? Find(string id) => Get(id) ?? (_store.ResolvePrefix(id) is { } full ? Get(full) : null);

    /// <summary>A pod whose infra process died has lost its PID namespace: it is NotReady, as when a pause container dies.</summary>
    private SandboxRecord Refresh(SandboxRecord record)
    {
        if (record is not { State: SandboxState.Ready, Infra: { } infra } || _host.IsInfraAlive(infra)) return record;
        LogInfraDied(_logger, record.Id, infra.Pid);
        record = record with { State = SandboxState.NotReady };
        _store.Update(record);
        return record;
    }

    /// <summary>Is the pod network usable, and if not, why (for Status' NetworkReady).</summary>
    public Task<(bool Ready, string Reason)> NetworkStatusAsync(CancellationToken cancellationToken) => _network.StatusAsync(cancellationToken);

    /// <summary>Undoes what crashes left half made, and marks sandboxes whose namespaces are gone (a reboot) as not ready.</summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        foreach (var record in _store.List())
        {
            if (record.State == SandboxState.Creating)
            {
                LogRecovering(_logger, record.Id);
                await RollBackAsync(record);
            }
            else if (record.State == SandboxState.Ready && (record.NamespacePaths.Values.Any(p => !_host.IsNamespace(p))
                                                            || record.Infra is { } infra && !_host.IsInfraAlive(infra)))
            {
                // The namespaces or the infra process are gone (a reboot emptied /run): the pod cannot run again here.
                await StopAsync(record.Id, cancellationToken);
            }
            else if (record is { State: SandboxState.NotReady, Released: false })
            {
                LogFinishingStop(_logger, record.Id);
                await StopAsync(record.Id, cancellationToken);
            }
        }
        // Before any RPC, so no ADD is under way: what a sandbox without a record still holds in CNI is freed.
        var live = _store.List().Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var error in await _network.GarbageCollectAsync(live, cancellationToken)) LogGcError(_logger, error);
    }

    public async Task<SandboxRecord> RunAsync(SandboxRequest request, CancellationToken cancellationToken)
    {
        Validate(request);
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var directory = Path.Combine(_options.StateDirectory, id);
        // Without a hostname (kubelet always sends one) the pod gets the node's, as containerd does.
        var hostname = request.HostNetwork || string.IsNullOrEmpty(request.Hostname) ? Environment.MachineName : request.Hostname;
        var namespaces = (request.HostNetwork ? PodNamespaces.None : PodNamespaces.Network | PodNamespaces.Uts)
                         | (request.HostIpc ? PodNamespaces.None : PodNamespaces.Ipc)
                         | (request.UserNamespace is null ? PodNamespaces.None : PodNamespaces.User);
        var nsDirectory = Path.Combine(directory, "ns");
        var record = new SandboxRecord
        {
            Id = id,
            Name = request.Name,
            Namespace = request.Namespace,
            Uid = request.Uid,
            Attempt = request.Attempt,
            State = SandboxState.Creating,
            CreatedAtUnixNanos = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100,
            Hostname = hostname,
            LogDirectory = request.LogDirectory,
            Labels = new(request.Labels),
            Annotations = new(request.Annotations),
            RuntimeHandler = request.RuntimeHandler,
            HostNetwork = request.HostNetwork,
            HostIpc = request.HostIpc,
            Pid = request.Pid,
            Privileged = request.Privileged,
            CgroupParent = request.CgroupParent,
            PortMappings = [.. request.PortMappings],
            UserNamespace = request.UserNamespace,
            NamespacePaths = Enum.GetValues<PodNamespaces>()
                .Where(k => k != PodNamespaces.None && namespaces.HasFlag(k))
                .ToDictionary(k => k.ToString().ToLowerInvariant(), k => NamespacePinner.PathOf(nsDirectory, k)),
            Directory = directory,
            ShmPath = request.HostIpc ? null : Path.Combine(directory, PodShm.Directory),
        };

        // The record first: a crash from here on leaves a Creating record that RecoverAsync undoes.
        _store.Reserve(record, holder => new SandboxExistsException(
            $"metadata: a sandbox named {record.Name} in {record.Namespace} (uid {record.Uid}, attempt {record.Attempt}) exists already: {holder}"));
        var step = "creating the sandbox directory";
        try
        {
            Directory.CreateDirectory(directory);
            InfraProcess? infra = null;
            if (request.UserNamespace is { } mapping)
            {
                step = "creating the pod's user namespace and the namespaces it owns";
                using (Tracing.Source.StartActivity("sandbox.namespaces"))
                    infra = await _host.CreateUserNamespacesAsync(id, nsDirectory, mapping, request.Pid == PidMode.Pod, hostname, request.Sysctls, cancellationToken);
            }
            else
            {
                step = "creating the pod's namespaces";
                using (Tracing.Source.StartActivity("sandbox.namespaces"))
                    _host.CreateNamespaces(nsDirectory, namespaces, request.HostNetwork ? null : hostname, request.Sysctls);
                if (request.Pid == PidMode.Pod)
                {
                    step = "starting the infra process of the pod's PID namespace";
                    using (Tracing.Source.StartActivity("sandbox.infra"))
                        infra = _host.StartInfra(id, nsDirectory, record.NamespacePaths);
                }
            }
            if (infra is not null)
            {
                record = record with
                {
                    Infra = infra,
                    NamespacePaths = new(record.NamespacePaths) { ["pid"] = Path.Combine(nsDirectory, PodInfra.PidPin) },
                };
                _store.Update(record);
            }

            List<string> ips = [];
            if (!request.HostNetwork)
            {
                step = "setting up the pod network (CNI ADD)";
                using var network = Tracing.Source.StartActivity("sandbox.network");
                var result = await _network.AddAsync(CniRuntime(record, request.Dns, _podCidr), cancellationToken);
                ips = [.. result.SandboxAddresses.Select(a => a.ToString())];
            }
            if (!request.HostIpc)
            {
                step = "mounting the pod's /dev/shm";
                using (Tracing.Source.StartActivity("sandbox.shm")) _host.CreateShm(directory, request.UserNamespace?.Root);
            }
            step = "writing hostname, hosts and resolv.conf";
            using (Tracing.Source.StartActivity("sandbox.files")) PodFiles.Write(directory, hostname, request.Dns, ips, request.UserNamespace?.Root);

            record = record with { State = SandboxState.Ready, Ips = ips };
            _store.Update(record);
            return record;
        }
        catch (Exception e)
        {
            await RollBackAsync(record);
            if (e is SandboxException) throw;
            throw new SandboxSetupException($"RunPodSandbox failed while {step}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Stops the pod's network and releases its namespaces. The record turns NotReady first, so a crash midway
    /// never leaves a Ready pod without its network; the teardown itself is idempotent and runs again on a
    /// second Stop. Unknown IDs are fine, as kubelet expects.
    /// </summary>
    public async Task StopAsync(string id, CancellationToken cancellationToken)
    {
        var record = _store.Get(id);
        if (record is null || record.Released) return;
        if (record.State != SandboxState.NotReady) _store.Update(record = record with { State = SandboxState.NotReady });
        await TearDownAsync(record, afterCrash: false, cancellationToken);
        _store.Update(record with { Released = true });
    }

    /// <summary>Stops if needed, then removes every trace. Unknown IDs are fine.</summary>
    public async Task RemoveAsync(string id, CancellationToken cancellationToken)
    {
        var record = _store.Get(id);
        if (record is null) return;
        // A released pod's network, pins and /dev/shm went with its StopPodSandbox: CNI DEL ran there, with the netns.
        if (!record.Released) await TearDownAsync(record, afterCrash: record.State == SandboxState.Creating, cancellationToken);
        if (Directory.Exists(record.Directory)) Directory.Delete(record.Directory, recursive: true);
        _store.Delete(record);
    }

    private async Task RollBackAsync(SandboxRecord record)
    {
        try
        {
            await TearDownAsync(record, afterCrash: true, CancellationToken.None);
            if (Directory.Exists(record.Directory)) Directory.Delete(record.Directory, recursive: true);
            _store.Delete(record);
        }
        catch (Exception e)
        {
            // Left as a Creating record, so the next start retries the cleanup.
            LogRollbackFailed(_logger, record.Id, e);
        }
    }

    /// <summary>
    /// The infra process, CNI DEL, the namespaces, then /dev/shm; all idempotent. After a failed or interrupted ADD the DEL runs even without a
    /// cached result (the plugins may have half set up); otherwise only a completed, cached ADD is undone.
    /// </summary>
    private async Task TearDownAsync(SandboxRecord record, bool afterCrash, CancellationToken cancellationToken)
    {
        if (record.Pid == PidMode.Pod) await _host.StopInfraAsync(record.Id, cancellationToken);
        if (!record.HostNetwork)
        {
            var runtime = CniRuntime(record, null, _podCidr);
            // A pin that is gone, or is no network namespace any more (unmounted by hand), still gets its DEL, without
            // a netns as the CNI spec allows, so IPAM frees the lease and the node's rules go; the pod stays removable.
            if (runtime.NetnsPath.Length > 0 && !_host.IsNamespace(runtime.NetnsPath))
            {
                LogNetnsGone(_logger, record.Id, runtime.NetnsPath);
                runtime = runtime with { NetnsPath = "" };
            }
            await _network.DelAsync(runtime, onlyIfAdded: !afterCrash, cancellationToken);
        }
        _host.RemoveNamespaces(Path.Combine(record.Directory, "ns"));
        _host.RemoveShm(record.Directory);
    }

    /// <summary>
    /// The attachment's CNI_ARGS and capability args: portMappings, bandwidth (from kubelet's pod annotations),
    /// dns (the pod's DNSConfig) and ipRanges (the pod CIDR); plugins see only those they declare.
    /// </summary>
    private static CniRuntimeConfig CniRuntime(SandboxRecord record, DnsSettings? dns, string? podCidr)
    {
        var capabilities = new JsonObject();
        if (Bandwidth.FromAnnotations(record.Annotations) is { } bandwidth) capabilities["bandwidth"] = bandwidth;
        if (dns is not null)
        {
            capabilities["dns"] = new JsonObject
            {
                ["servers"] = new JsonArray([.. dns.Servers.Select(v => (JsonNode)JsonValue.Create(v))]),
                ["searches"] = new JsonArray([.. dns.Searches.Select(v => (JsonNode)JsonValue.Create(v))]),
                ["options"] = new JsonArray([.. dns.Options.Select(v => (JsonNode)JsonValue.Create(v))]),
            };
        }
        if (podCidr is not null) capabilities["ipRanges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = podCidr }));
        // A mapping without a host port only documents the container port; nothing is exposed on the node.
        var exposed = record.PortMappings.Where(p => p.HostPort > 0).ToList();
        if (exposed.Count > 0)
        {
            capabilities["portMappings"] = new JsonArray([.. exposed.Select(p => (JsonNode)new JsonObject
            {
                ["hostPort"] = p.HostPort,
                ["containerPort"] = p.ContainerPort,
                ["protocol"] = p.Protocol,
                ["hostIP"] = p.HostIp,
            })]);
        }
        return new CniRuntimeConfig
        {
            ContainerId = record.Id,
            NetnsPath = record.NamespacePaths.GetValueOrDefault("network", ""),
            Args = new Dictionary<string, string>
            {
                ["IgnoreUnknown"] = "1",
                ["K8S_POD_NAMESPACE"] = record.Namespace,
                ["K8S_POD_NAME"] = record.Name,
                ["K8S_POD_INFRA_CONTAINER_ID"] = record.Id,
                ["K8S_POD_UID"] = record.Uid,
            },
            CapabilityArgs = capabilities,
        };
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();

    private void Validate(SandboxRequest request)
    {
        if (string.IsNullOrEmpty(request.Name)) throw new SandboxRequestException("metadata.name is required");
        if (string.IsNullOrEmpty(request.Namespace)) throw new SandboxRequestException("metadata.namespace is required");
        if (string.IsNullOrEmpty(request.Uid)) throw new SandboxRequestException("metadata.uid is required");
        if (!_options.RuntimeHandlers.Contains(request.RuntimeHandler))
            throw new SandboxRequestException($"runtime_handler: '{request.RuntimeHandler}' is not a configured runtime handler ({string.Join(", ", _options.RuntimeHandlers.Select(h => h.Length == 0 ? "\"\"" : h))})");
        if (!string.IsNullOrEmpty(request.Hostname) && (request.Hostname.Length > 63 || !DnsSubdomain().IsMatch(request.Hostname)))
            throw new SandboxRequestException($"hostname: '{request.Hostname}' is not a valid hostname");
        if (request.CgroupParent is { Length: > 0 } parent
            && (parent.Length > 4096 || parent.Contains('\0', StringComparison.Ordinal) || parent.Split('/').Contains("..")))
            throw new SandboxRequestException($"linux.cgroup_parent: '{Abbreviate(parent)}' is not a cgroup path (no '..', no NUL, at most 4096 bytes)");
        if (request.UserNamespace is { } userns) ValidateUserNamespace(request, userns);
        foreach (var port in request.PortMappings)
        {
            if (port.ContainerPort is <= 0 or > 65535)
                throw new SandboxRequestException($"port_mappings: container_port {port.ContainerPort} is out of range 1-65535");
            if (port.HostPort is < 0 or > 65535)
                throw new SandboxRequestException($"port_mappings: host_port {port.HostPort} is out of range 0-65535");
        }
        foreach (var (key, _) in request.Sysctls)
        {
            var namespaced = key.StartsWith("net.", StringComparison.Ordinal) && !request.HostNetwork
                             || NamespacePinner.IsIpcSysctl(key) && !request.HostIpc;
            if (!namespaced || key.Contains("..", StringComparison.Ordinal) || key.Contains('/', StringComparison.Ordinal))
                throw new SandboxRequestException($"linux.sysctls: '{key}' is not a sysctl of the pod's own namespaces");
        }
    }

    /// <summary>
    /// A pod user namespace maps container ID 0 (its root) to a range of the node's, for UIDs and GIDs alike; the range
    /// itself is the kubelet's to choose. Its network, IPC and PID namespaces must be its own: a node namespace is owned
    /// by the node's user namespace, where the pod's root has no rights, so its containers could not mount /sys,
    /// /dev/mqueue or /proc.
    /// </summary>
    private static void ValidateUserNamespace(SandboxRequest request, UserNamespaceMapping userns)
    {
        const string field = "linux.security_context.namespace_options.userns_options";
        foreach (var (name, mapping) in new[] { ("uids", userns.Uids), ("gids", userns.Gids) })
        {
            if (mapping.ContainerId != 0)
                throw new SandboxRequestException($"{field}.{name}[0].container_id: {mapping.ContainerId}; the mapping must map container ID 0");
            if (mapping.Length == 0)
                throw new SandboxRequestException($"{field}.{name}[0].length: 0; the mapping must map at least one ID");
            if ((ulong)mapping.HostId + mapping.Length > uint.MaxValue)
                throw new SandboxRequestException($"{field}.{name}[0]: host IDs {mapping.HostId} to {(ulong)mapping.HostId + mapping.Length - 1} go past {uint.MaxValue - 1}");
        }
        if (request.HostNetwork || request.HostIpc || request.Pid == PidMode.Node)
            throw new SandboxRequestException($"{field}: a pod in a user namespace of its own cannot use the node's {(request.HostNetwork ? "network" : request.HostIpc ? "IPC" : "PID")} namespace");
    }

    /// <summary>Values in messages stay readable: what is longer than 200 characters is cut.</summary>
    private static string Abbreviate(string value) => value.Length <= 200 ? value : value[..200] + "…";

    [LoggerMessage(Level = LogLevel.Warning, Message = "CNI garbage collection: {Error}")]
    private static partial void LogGcError(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "sandbox {Id}: its infra process {Pid} died; the sandbox is NotReady")]
    private static partial void LogInfraDied(ILogger logger, string id, int pid);

    [LoggerMessage(Level = LogLevel.Warning, Message = "sandbox {Id}: finishing an interrupted StopPodSandbox")]
    private static partial void LogFinishingStop(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "sandbox {Id}: {Path} is no network namespace any more; CNI DEL runs without one")]
    private static partial void LogNetnsGone(ILogger logger, string id, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "sandbox {Id}: undoing what an interrupted RunPodSandbox left")]
    private static partial void LogRecovering(ILogger logger, string id);

    [LoggerMessage(Level = LogLevel.Error, Message = "sandbox {Id}: rollback failed; it will be retried at the next start")]
    private static partial void LogRollbackFailed(ILogger logger, string id, Exception exception);
}
