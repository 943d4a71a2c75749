using System.Diagnostics;
using Berth.Native;
using Berth.Shim.Logging;
using Berth.Shim.Native;
using Berth.ShimProtocol;

namespace Berth.Shim.Container;

/// <summary>
/// The shim's one thread of work after create: the container's output to the log and the attach clients, the
/// clients' input to the container's stdin, and control requests, until the init has exited and its output drained.
/// </summary>
internal sealed class ShimLoop(CreatedContainer container, CriLogWriter? log, ShimCommandLine options, OomWatch oom, CgroupKeeper? keeper)
{
    /// <summary>How long output may keep flowing after the init exits, from processes that still hold the pipes.</summary>
    private static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(2);

    /// <summary>Serves until the end; returns the init's exit code.</summary>
    public int Run(Reaper reaper)
    {
        var outputs = container.Outputs;
        var stdin = container.Stdin >= 0 ? new ContainerStdin(container.Stdin, isConsole: container.Stdin == container.Console) : null;
        var attach = new AttachServer(stdin, options.StdinOnce);
        var control = new ControlServer(log, options.LogPath, container.Console);
        var attachListener = Fd.Listen(ShimFiles.AttachSocket);
        var controlListener = Fd.Listen(ShimFiles.ControlSocket);
        var wake = Fd.Pipe();
        var exitCode = -1;
        reaper.Watch(container.InitPid, code =>
        {
            // The cgroup is still there (the keeper holds a systemd scope): its OOM counts are final now, and then it may go.
            oom.Look();
            keeper?.Release();
            Volatile.Write(ref exitCode, code);
            Fd.WriteAll(wake.Write, "x"u8);
        });

        // Unzeroed, as the log writer's: only what a read fills is used, and pages a quiet container never fills stay unmapped.
        var buffer = GC.AllocateUninitializedArray<byte>(32 * 1024);
        var poll = new PollSet(5 + outputs.Count + AttachServer.MaxClients);
        long? drainUntil = null;
        while (true)
        {
            // The order here is the order results are read in below.
            poll.Clear();
            poll.Add(wake.Read, Libc.PollIn);
            poll.Add(attachListener, Libc.PollIn);
            poll.Add(controlListener, Libc.PollIn);
            poll.Add(oom.Fd, Libc.PollIn);
            foreach (var (fd, _) in outputs) poll.Add(fd, Libc.PollIn);
            var stdinBehind = stdin is { IsBehind: true };
            var polledClients = attach.AddTo(poll, stdinBehind);
            if (stdinBehind) poll.Add(stdin!.Fd, Libc.PollOut);

            if (drainUntil is { } until && (outputs.Count == 0 || Stopwatch.GetTimestamp() >= until)) break;
            var timeout = drainUntil is { } deadline ? Math.Max(0, (int)Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline).TotalMilliseconds) + 1 : -1;
            if (poll.Wait(timeout) <= 0) continue;

            var position = 0;
            if (poll.Returned(position++) != 0)
            {
                _ = Fd.Read(wake.Read, buffer);
                drainUntil = Stopwatch.GetTimestamp() + (long)(DrainTime.TotalSeconds * Stopwatch.Frequency);
            }
            if (poll.Returned(position++) != 0 && Fd.Accept(attachListener, nonBlocking: true) is var client and >= 0) attach.Admit(client);
            if (poll.Returned(position++) != 0 && Fd.Accept(controlListener) is var request and >= 0) control.Handle(request);
            if (poll.Returned(position++) != 0) oom.OnReadable(buffer);
            position = ServeOutputs(poll, position, attach, buffer);
            position = attach.Serve(poll, position, polledClients, buffer);
            if (stdinBehind && poll.Returned(position) != 0) stdin!.OnWritable();
        }

        foreach (var (_, stream) in outputs) log?.Complete(stream);
        attach.Finish(DrainTime);
        return Volatile.Read(ref exitCode);
    }

    /// <summary>Reads the container's ready outputs into the log and the clients; an output at its end is completed and removed.</summary>
    private int ServeOutputs(PollSet poll, int position, AttachServer attach, byte[] buffer)
    {
        var outputs = container.Outputs;
        for (var o = 0; o < outputs.Count; position++)
        {
            if (poll.Returned(position) == 0)
            {
                o++;
                continue;
            }
            var (fd, stream) = outputs[o];
            var read = Fd.Read(fd, buffer);
            if (read != 0)
            {
                if (read > 0)
                {
                    log?.Write(stream, buffer.AsSpan(0, read));
                    attach.Broadcast(stream, buffer.AsSpan(0, read));
                }
                o++;
                continue;
            }
            log?.Complete(stream);
            if (fd != container.Console) _ = Descriptors.Close(fd);
            outputs.RemoveAt(o);
        }
        return position;
    }
}
