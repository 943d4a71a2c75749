using System.Globalization;
using System.Text;
using Berth.Native;
using Berth.Shim.Native;

namespace Berth.Shim.Container;

/// <summary>
/// Under the systemd driver, a container's scope and its cgroup go the moment the container's last process does, and
/// with them the OOM counts the shim must read at the exit. The keeper is a forked child of the shim, moved into the
/// container's cgroup, that blocks on a pipe: it keeps the cgroup populated, so systemd leaves it, until the shim has
/// read the counts and lets it go. It is in the node's PID namespace, so the death of the container's init does not
/// take it; a kill of every process of the container (a forced stop) does, and then it holds nothing. It charges the
/// container a page or two, and exits on its own when the shim goes (its pipe's end closes).
/// </summary>
internal sealed unsafe class CgroupKeeper
{
    private int _release;

    private CgroupKeeper(int pid, int release) => (Pid, _release) = (pid, release);

    public int Pid { get; }

    /// <summary>Forks the keeper into <paramref name="cgroupDirectory"/>; null (noted in shim.log) when it can't be.</summary>
    public static CgroupKeeper? Start(Reaper reaper, string cgroupDirectory)
    {
        var (read, write) = Fd.Pipe();
        int pid;
        try
        {
            pid = reaper.Fork(&Hold, read);
        }
        catch (IOException e)
        {
            Fd.WriteText(2, $"cgroup keeper: {e.Message}\n");
            _ = Descriptors.Close(read);
            _ = Descriptors.Close(write);
            return null;
        }
        _ = Descriptors.Close(read);
        var keeper = new CgroupKeeper(pid, write);
        var procs = Path.Combine(cgroupDirectory, "cgroup.procs");
        var fd = Descriptors.Open(procs, Descriptors.OWrOnly | Descriptors.OCloExec);
        try
        {
            if (fd < 0) throw Fd.Failure($"open {procs}");
            Fd.WriteAll(fd, Encoding.ASCII.GetBytes(pid.ToString(CultureInfo.InvariantCulture)));
            return keeper;
        }
        catch (IOException e)
        {
            Fd.WriteText(2, $"cgroup keeper: {e.Message}\n");
            keeper.Release();
            return null;
        }
        finally
        {
            if (fd >= 0) _ = Descriptors.Close(fd);
        }
    }

    /// <summary>Lets the keeper exit, and with it the cgroup go. Idempotent; safe from any thread.</summary>
    public void Release()
    {
        var fd = Interlocked.Exchange(ref _release, -1);
        if (fd >= 0) _ = Descriptors.Close(fd);
    }

    /// <summary>In the child: nothing but the pipe's read end, then a read until its other end closes.</summary>
    private static void Hold(int read)
    {
        _ = Libc.Dup2(read, 0);
        _ = Libc.CloseRange(3, uint.MaxValue, 0);
        byte b;
        while (Libc.Read(0, &b, 1) is var n && (n > 0 || n < 0 && Descriptors.LastError == Libc.EIntr))
        {
        }
        Libc.Exit(0);
    }
}
