using System.Diagnostics;
using Berth.Native;
using Berth.Shim.Logging;
using Berth.Shim.Native;
using Berth.ShimProtocol;

namespace Berth.Shim.Container;

/// <summary>
/// The attach socket's clients: each gets the container's output framed (<see cref="AttachFrame"/>), and what
/// they send goes to the container's stdin. Clients are polled by the shim's loop, in list order.
/// </summary>
internal sealed unsafe class AttachServer(ContainerStdin? stdin, bool stdinOnce)
{
    /// <summary>Attach clients served at once: each holds a socket and up to 1 MiB of backlog here.</summary>
    internal const int MaxClients = 16;

    private readonly List<AttachClient> _clients = [];

    public int Count => _clients.Count;

    /// <summary>Adds the clients' poll entries; returns how many (clients admitted later wait for the next round).</summary>
    public int AddTo(PollSet poll, bool stdinBehind)
    {
        foreach (var client in _clients)
        {
            // Input is not read while the container's stdin is behind; an input-ended client is watched for its
            // hangup only (reported whatever the events).
            var events = (short)((client.InputEnded || stdinBehind ? 0 : Libc.PollIn) | (client.Output.IsEmpty ? 0 : Libc.PollOut));
            poll.Add(client.Fd, events);
        }
        return _clients.Count;
    }

    /// <summary>A new client, or, past <see cref="MaxClients"/>, a closed connection and a line in shim.log.</summary>
    public void Admit(int client)
    {
        if (_clients.Count < MaxClients)
        {
            _clients.Add(new AttachClient(client));
            return;
        }
        _ = Descriptors.Close(client);
        Fd.WriteText(2, $"{Rfc3339.Format(DateTime.UtcNow)} attach client refused: {MaxClients} are attached already\n");
    }

    /// <summary>Sends the polled clients their backlog and takes their input; returns the next poll position.</summary>
    public int Serve(PollSet poll, int position, int polled, byte[] buffer)
    {
        for (int seen = 0, c = 0; seen < polled; seen++, position++)
        {
            var client = _clients[c];
            var revents = poll.Returned(position);
            if (client.Dropped || (revents & Libc.PollOut) != 0 && !client.Output.Flush() || client.InputEnded && (revents & ~Libc.PollOut) != 0)
            {
                // Gone: a failed send, too far behind, or the hangup of a client whose input had ended.
                Drop(c);
                continue;
            }
            c++;
            if ((revents & ~Libc.PollOut) == 0) continue;
            var read = Fd.Read(client.Fd, buffer);
            if (read > 0)
            {
                stdin?.Write(buffer.AsSpan(0, read));
            }
            else if (read == 0)
            {
                // End of the client's input: it may still be reading output, so it stays until it hangs up.
                client.InputEnded = true;
                if (stdinOnce && stdin is { Claimed: true }) stdin.Close();
            }
        }
        return position;
    }

    /// <summary>Output to every client; one that falls too far behind is marked, and removed at its place in the next round.</summary>
    public void Broadcast(LogStream stream, ReadOnlySpan<byte> data)
    {
        if (_clients.Count == 0) return;
        Span<byte> header = stackalloc byte[AttachFrame.HeaderLength];
        AttachFrame.WriteHeader(header, stream == LogStream.Stdout ? AttachFrame.Stdout : AttachFrame.Stderr, data.Length);
        foreach (var client in _clients)
        {
            if (client.Dropped || client.Output.Write(header, data)) continue;
            if (client.Output.Overflowed)
                Fd.WriteText(2, $"{Rfc3339.Format(DateTime.UtcNow)} attach client dropped: more than {AttachClient.MaxBacklog} bytes of output behind\n");
            client.Dropped = true;
        }
    }

    /// <summary>The container is done: clients that are behind get up to <paramref name="limit"/> to take the rest; then all go.</summary>
    public void Finish(TimeSpan limit)
    {
        for (var c = _clients.Count - 1; c >= 0; c--)
        {
            if (_clients[c].Dropped) Drop(c);
        }
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < limit)
        {
            var behind = _clients.FindIndex(client => !client.Output.IsEmpty);
            if (behind < 0) break;
            var poll = new Libc.PollFd { Fd = _clients[behind].Fd, Events = Libc.PollOut };
            if (Libc.Poll(&poll, 1, 100) > 0 && !_clients[behind].Output.Flush()) Drop(behind);
        }
        while (_clients.Count > 0) Drop(_clients.Count - 1);
    }

    private void Drop(int index)
    {
        _ = Descriptors.Close(_clients[index].Fd);
        _clients.RemoveAt(index);
    }
}
