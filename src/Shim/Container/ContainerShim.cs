using System.Text;
using Berth.Native;
using Berth.Shim.Logging;
using Berth.Shim.Native;
using Berth.ShimProtocol;

namespace Berth.Shim.Container;

/// <summary>
/// One container's keeper, conmon-style. It detaches from berthd, becomes the subreaper, has the OCI runtime create
/// the container (<see cref="RuntimeCreate"/>), reports the init PID on its stdout (<see cref="ShimReport"/>), then
/// serves the container's stdio, log, attach and control sockets (<see cref="ShimLoop"/>), and when the init exits
/// writes the exit file atomically and leaves. berthd restarts do not touch it: everything berthd needs later is in
/// files and sockets in the bundle.
/// </summary>
internal static class ContainerShim
{
    public static int Run(ShimCommandLine options)
    {
        _ = Libc.SetSid();
        _ = Libc.Prctl(Libc.PrSetChildSubreaper, 1, 0, 0, 0);
        Directory.SetCurrentDirectory(options.Bundle);
        var devNull = Fd.OpenDevNull();
        // The shim's own diagnostics (and an unhandled exception's trace) go to a file in the bundle.
        var diagnostics = Descriptors.Open(ShimFiles.ShimLog, Descriptors.OWrOnly | Descriptors.OCreat | Descriptors.OAppend | Descriptors.OCloExec, 0x1A0);
        _ = Libc.Dup2(devNull, 0);
        if (diagnostics >= 0) _ = Libc.Dup2(diagnostics, 2);

        var reaper = new Reaper();
        var created = false;
        CriLogWriter? log = null;
        CgroupKeeper? keeper = null;
        try
        {
            if (options.LogPath is { } logPath) log = new CriLogWriter(new AppendOnlyFile(logPath));
            var creating = System.Diagnostics.Stopwatch.GetTimestamp();
            var container = RuntimeCreate.Run(options, reaper, devNull);
            var runtimeCreate = System.Diagnostics.Stopwatch.GetElapsedTime(creating);
            var cgroup = ContainerCgroup.DirectoryOf(container.InitPid);
            // A systemd scope goes with the container's last process; a cgroupfs cgroup stays until the runtime deletes it.
            keeper = options.SystemdCgroup && cgroup is not null ? CgroupKeeper.Start(reaper, cgroup) : null;
            var oom = OomWatch.Start(cgroup);
            Report(ShimReport.Created(container.InitPid, (long)runtimeCreate.TotalMicroseconds));
            created = true;
            _ = Libc.Dup2(devNull, 1);
            var exitCode = new ShimLoop(container, log, options, oom, keeper).Run(reaper);
            log?.Dispose();
            oom.Look();
            WriteExitFile(options.ExitFile, exitCode, oom.Killed);
            return 0;
        }
        catch (Exception e)
        {
            Fd.WriteText(2, $"{Rfc3339.Format(DateTime.UtcNow)} {e}\n");
            // Before the report, berthd is listening and undoes the container; after it, the exit file tells.
            if (!created) Report(ShimReport.Error(e.Message));
            else WriteExitFile(options.ExitFile, 255, oomKilled: false);
            return 1;
        }
        finally
        {
            keeper?.Release();
            log?.Dispose();
            File.Delete(ShimFiles.AttachSocket);
            File.Delete(ShimFiles.ControlSocket);
        }
    }

    private static void Report(string line)
    {
        try
        {
            Fd.WriteAll(1, Encoding.UTF8.GetBytes(line));
        }
        catch (IOException)
        {
            // berthd is gone; the exit file still tells.
        }
    }

    private static void WriteExitFile(string path, int exitCode, bool oomKilled)
    {
        var exitedAt = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        Fd.WriteFileAtomically(path, Encoding.UTF8.GetBytes(new ShimExitStatus(exitCode, exitedAt, oomKilled).Format()));
    }
}
