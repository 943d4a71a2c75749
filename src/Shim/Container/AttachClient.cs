namespace Berth.Shim.Container;

/// <summary>
/// One connection to the attach socket, non-blocking. Output it cannot take at once waits in a backlog of its
/// own, so a client that stops reading holds up neither the container (whose pipes the shim must keep
/// draining), nor the log, nor the other clients. A client whose backlog would pass <see cref="MaxBacklog"/>
/// is dropped: it lost output, and a silent gap would be worse than a closed stream.
/// </summary>
internal sealed class AttachClient(int fd)
{
    public const int MaxBacklog = 1 << 20;

    public int Fd { get; } = fd;

    public WriteBacklog Output { get; } = new(fd, MaxBacklog, socket: true);

    /// <summary>Gone or too far behind: closed and removed by the loop at its place in the poll results.</summary>
    public bool Dropped { get; set; }

    /// <summary>The client shut down its sending side; it may still read output until it hangs up.</summary>
    public bool InputEnded { get; set; }
}
