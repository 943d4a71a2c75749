using System.Runtime.InteropServices;
using Berth.Native;
using Berth.Shim.Native;

namespace Berth.Shim;

/// <summary>
/// The pod's infra process, started by berthd as PID 1 of a new PID namespace when a pod shares one. It does
/// what a pause container does and nothing more: it keeps the namespace alive, and as its init it reaps the
/// orphans that containers leave behind. It needs no image.
/// </summary>
internal static class PodInfra
{
    public static int Run()
    {
        // Its own session, so nothing aimed at berthd's process group (a terminal's ^C) reaches the pod.
        _ = Libc.SetSid();
        DetachStdio();

        using var stop = new ManualResetEventSlim();
        // PID 1 of a namespace gets no signal it has no handler for, so these handlers are what make it stoppable.
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Set(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Set(); });
        using var child = PosixSignalRegistration.Create(PosixSignal.SIGCHLD, _ => ReapAll());
        ReapAll();
        stop.Wait();
        return 0;
    }

    private static void ReapAll()
    {
        while (Libc.WaitPid(-1, out _, Libc.WNoHang) > 0)
        {
        }
    }

    /// <summary>berthd's stdio may be a terminal or a journal pipe that will not outlive it.</summary>
    private static void DetachStdio()
    {
        var devNull = Descriptors.Open("/dev/null", Descriptors.ORdWr);
        if (devNull < 0) return;
        for (var fd = 0; fd <= 2; fd++) _ = Libc.Dup2(devNull, fd);
        if (devNull > 2) _ = Descriptors.Close(devNull);
    }
}
