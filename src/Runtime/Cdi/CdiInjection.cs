namespace Berth.Runtime.Cdi;

/// <summary>A device node as the container gets it, its type and numbers taken from the host's node where the spec left them out.</summary>
public sealed record CdiDeviceNode
{
    public required string Path { get; init; }
    public required string HostPath { get; init; }

    /// <summary>b, c, u or p.</summary>
    public required string Type { get; init; }

    public long Major { get; init; }
    public long Minor { get; init; }
    public uint? FileMode { get; init; }
    public uint? Uid { get; init; }
    public uint? Gid { get; init; }

    /// <summary>The device cgroup access to allow ("rwm" when the spec gave none), or null for no rule (permissions "none", or not b or c).</summary>
    public string? CgroupAccess { get; init; }

    /// <summary>
    /// Bind-mounted from <see cref="HostPath"/> instead of made: a user namespace's root cannot make device nodes, and
    /// runc, binding them itself there, takes the node from the container's path on the host.
    /// </summary>
    public bool BindMount { get; init; }
}

/// <summary>
/// What a container's CDI devices do to it: each spec's own edits once (the first time one of its devices is asked
/// for), then each device's, in the order asked, as CDI applies them. Ready for the OCI spec.
/// </summary>
public sealed record CdiInjection
{
    public static readonly CdiInjection None = new();

    /// <summary>The devices asked for, fully qualified, de-duplicated, in order.</summary>
    public IReadOnlyList<string> Devices { get; init; } = [];
    public IReadOnlyList<string> Env { get; init; } = [];
    public IReadOnlyList<CdiDeviceNode> DeviceNodes { get; init; } = [];
    public IReadOnlyList<CdiMountDocument> Mounts { get; init; } = [];
    public IReadOnlyList<CdiHookDocument> Hooks { get; init; } = [];
    public CdiIntelRdtDocument? IntelRdt { get; init; }
    public IReadOnlyList<uint> AdditionalGids { get; init; } = [];
    public IReadOnlyList<CdiNetDeviceDocument> NetDevices { get; init; } = [];

    /// <summary>The spec files the devices came from, for messages.</summary>
    public IReadOnlyList<string> SpecFiles { get; init; } = [];
}

/// <summary>A device request that cannot be met: unknown, in conflict or malformed (the request's fault), or the host's node is missing (the node's).</summary>
public sealed class CdiDeviceException(string message, bool requestError) : Exception(message)
{
    /// <summary>True when the request is wrong (InvalidArgument); false when the node cannot give it (FailedPrecondition).</summary>
    public bool RequestError { get; } = requestError;
}
