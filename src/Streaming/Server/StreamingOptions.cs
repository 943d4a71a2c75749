namespace Berth.Streaming.Server;

/// <summary>Bounds of the streaming server (defaults follow the kubelet's streaming library).</summary>
public sealed record StreamingOptions
{
    /// <summary>How long a URL handed out by Exec, Attach or PortForward stays valid.</summary>
    public TimeSpan TokenLifetime { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How many URLs may be outstanding (issued and not yet used or expired).</summary>
    public int MaxOutstandingTokens { get; init; } = 1000;

    /// <summary>How long a client has to open its SPDY streams after the upgrade.</summary>
    public TimeSpan StreamCreationTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A session with no traffic for this long ends.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(4);
}
