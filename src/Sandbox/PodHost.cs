namespace Berth.Sandbox;

/// <summary>
/// What a pod is made of on the node besides its network: pinned namespaces, the infra process of a shared PID
/// namespace and the pod's /dev/shm. <see cref="NodePodHost"/> makes them for real (as root); unit tests fake them.
/// </summary>
internal interface IPodHost
{
    void CreateNamespaces(string nsDirectory, PodNamespaces namespaces, string? hostname, IReadOnlyDictionary<string, string> sysctls);

    /// <summary>
    /// The pod's own user namespace with the network, IPC and UTS namespaces it owns, set up and pinned; with a shared PID
    /// namespace also the infra inside them, which is returned.
    /// </summary>
    Task<InfraProcess?> CreateUserNamespacesAsync(
        string sandboxId, string nsDirectory, UserNamespaceMapping mapping, bool sharedPid, string hostname,
        IReadOnlyDictionary<string, string> sysctls, CancellationToken cancellationToken);

    /// <summary>Is the path a namespace still (a pin that was not unmounted, a /run that a reboot did not empty)?</summary>
    bool IsNamespace(string path);

    void RemoveNamespaces(string nsDirectory);

    InfraProcess StartInfra(string sandboxId, string nsDirectory, IReadOnlyDictionary<string, string> namespacePaths);

    bool IsInfraAlive(InfraProcess infra);

    /// <summary>Kills the sandbox's infra, found by its command line (one started just before a crash has no PID on record).</summary>
    Task StopInfraAsync(string sandboxId, CancellationToken cancellationToken);

    /// <summary>The pod's /dev/shm, its root owned by <paramref name="owner"/> (a pod user namespace's root) when given.</summary>
    void CreateShm(string sandboxDirectory, (uint Uid, uint Gid)? owner);

    void RemoveShm(string sandboxDirectory);
}

/// <summary>The node's own: namespaces pinned by bind mounts, <c>berth-shim pause</c> as the infra, a tmpfs /dev/shm.</summary>
internal sealed class NodePodHost(string shimBinary) : IPodHost
{
    public void CreateNamespaces(string nsDirectory, PodNamespaces namespaces, string? hostname, IReadOnlyDictionary<string, string> sysctls) =>
        NamespacePinner.Create(nsDirectory, namespaces, hostname, sysctls);

    public Task<InfraProcess?> CreateUserNamespacesAsync(
        string sandboxId, string nsDirectory, UserNamespaceMapping mapping, bool sharedPid, string hostname,
        IReadOnlyDictionary<string, string> sysctls, CancellationToken cancellationToken) =>
        UserNamespacePinner.CreateAsync(shimBinary, sandboxId, nsDirectory, mapping, sharedPid, hostname, sysctls, cancellationToken);

    public bool IsNamespace(string path) => NamespacePinner.IsNamespace(path);

    public void RemoveNamespaces(string nsDirectory) => NamespacePinner.Remove(nsDirectory);

    public InfraProcess StartInfra(string sandboxId, string nsDirectory, IReadOnlyDictionary<string, string> namespacePaths) =>
        PodInfra.Start(shimBinary, sandboxId, nsDirectory, namespacePaths);

    public bool IsInfraAlive(InfraProcess infra) => PodInfra.IsAlive(infra);

    public Task StopInfraAsync(string sandboxId, CancellationToken cancellationToken) => PodInfra.StopAsync(shimBinary, sandboxId, cancellationToken);

    public void CreateShm(string sandboxDirectory, (uint Uid, uint Gid)? owner) => PodShm.Create(sandboxDirectory, owner);

    public void RemoveShm(string sandboxDirectory) => PodShm.Remove(sandboxDirectory);
}
