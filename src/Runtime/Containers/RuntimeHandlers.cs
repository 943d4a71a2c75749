using Berth.Runtime.Spec;

namespace Berth.Runtime.Containers;

/// <summary>
/// What a handler's OCI runtime can do on this node, beyond what every runtime does: recursive read-only mounts, pod
/// user namespaces, moving network interfaces in (<c>linux.netDevices</c>), and runtime-spec 1.2.1's Intel RDT
/// <c>schemata</c> and <c>enableMonitoring</c>.
/// </summary>
public sealed record HandlerFeatures(bool RecursiveReadonlyMounts, bool UserNamespaces, bool NetDevices = false, bool IntelRdtSchemata = false)
{
    /// <summary>The runtime binary, for messages.</summary>
    public string Binary { get; init; } = "";
}

/// <summary>The configured runtime handlers (RuntimeClass names; "" is the default one) and what each can do.</summary>
internal sealed class RuntimeHandlers(IReadOnlyDictionary<string, IContainerRuntime> handlers, NodeSettings node)
{
    public IContainerRuntime? Find(string handler) => handlers.GetValueOrDefault(handler);

    /// <summary>The runtime of an existing container; its handler may have been removed from the configuration since.</summary>
    public IContainerRuntime Of(ContainerRecord record) =>
        handlers.TryGetValue(record.RuntimeHandler, out var runtime)
            ? runtime
            : throw new ContainerRuntimeException($"container {record.Id}: its runtime handler '{record.RuntimeHandler}' is no longer configured");

    /// <summary>Null for an unknown handler.</summary>
    public async Task<HandlerFeatures?> FeaturesAsync(string handler)
    {
        if (!handlers.TryGetValue(handler, out var runtime)) return null;
        var features = await runtime.FeaturesAsync();
        return new HandlerFeatures(
            RecursiveReadonlyMounts: node.MountSetattr && features.MountOptions.Contains("rro"),
            // Pods get their user namespace from Berth, idmapped mounts included; the runtime only has to join it.
            UserNamespaces: node.IdmappedMounts && features.Namespaces.Contains("user"),
            NetDevices: features.NetDevices,
            IntelRdtSchemata: features.TakesSpecVersion("1.2.1")) { Binary = runtime.Binary };
    }
}
