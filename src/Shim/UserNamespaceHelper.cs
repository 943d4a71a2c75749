using System.Runtime.InteropServices;
using System.Text;
using Berth.Native;
using Berth.Shim.Native;
using Berth.ShimProtocol;

namespace Berth.Shim;

/// <summary>
/// <c>berth-shim userns</c> (see <see cref="UserNamespaceHelperProtocol"/>). unshare(CLONE_NEWUSER) refuses a caller
/// with more than one thread, and the runtime has started its finalizer thread before Main, so the namespaces are made
/// in a forked child, which has this one thread alone. The child only makes plain syscalls on memory prepared before the
/// fork, and allocates nothing: no other thread exists there to take part in a garbage collection.
/// </summary>
internal static unsafe class UserNamespaceHelper
{
    private const int CloneNewUts = 0x04000000, CloneNewIpc = 0x08000000, CloneNewUser = 0x10000000, CloneNewPid = 0x20000000, CloneNewNet = 0x40000000;

    public static int Run(string sandboxId, bool sharedPid)
    {
        // Everything the child and the infra's exec need, made now: the infra's command line is the one berthd finds it by.
        // argv[0] as berthd gave it, not /proc/self/exe resolved: berthd finds the infra by the path it configured.
        var shim = Environment.GetCommandLineArgs()[0];
        var argv = new List<byte[]> { Encoding.UTF8.GetBytes(shim + "\0") };
        argv.AddRange(PodInfraCommandLine.ToArguments(sandboxId).Select(a => Encoding.UTF8.GetBytes(a + "\0")));
        var handles = argv.Select(a => GCHandle.Alloc(a, GCHandleType.Pinned)).ToList();
        var pointers = (byte**)NativeMemory.AllocZeroed((nuint)(argv.Count + 1), (nuint)sizeof(byte*));
        for (var i = 0; i < argv.Count; i++) pointers[i] = (byte*)handles[i].AddrOfPinnedObject();
        var environment = stackalloc byte*[1];
        environment[0] = null;
        var devNull = Descriptors.Open("/dev/null", Descriptors.ORdWr);
        if (devNull < 0) return Fail("open /dev/null"u8, Descriptors.LastError);
        var words = new Words(
            Encoding.ASCII.GetBytes(UserNamespaceHelperProtocol.Child),
            Encoding.ASCII.GetBytes(UserNamespaceHelperProtocol.Infra),
            Encoding.ASCII.GetBytes(UserNamespaceHelperProtocol.Ready));

        var child = Libc.Fork();
        if (child < 0) return Fail("fork"u8, Descriptors.LastError);
        if (child == 0) InChild(sharedPid, words, pointers, environment, devNull);

        // The parent only waits: berthd speaks with the child on the stdio they share.
        int status;
        while (Libc.WaitPid(child, out status, 0) < 0)
        {
            if (Descriptors.LastError != Libc.EIntr) return Fail("waitpid"u8, Descriptors.LastError);
        }
        return Libc.ExitCodeOf(status);
    }

    /// <summary>Never returns: it ends in _exit.</summary>
    private static void InChild(bool sharedPid, Words words, byte** argv, byte** environment, int devNull)
    {
        // Created together, the network, IPC and UTS namespaces are owned by the new user namespace.
        if (Libc.Unshare(CloneNewUser | CloneNewNet | CloneNewIpc | CloneNewUts) != 0) Libc.Exit(Fail("unshare"u8, Descriptors.LastError));
        Say(words.Child, Libc.GetPid());
        // berthd writes the ID maps, then sends a line; EOF means it gave up.
        if (!AwaitLine()) Libc.Exit(1);

        if (sharedPid)
        {
            // The infra runs as the namespace's root, which is an unprivileged ID on the node, with no groups of the node's.
            if (Libc.SetResGid(0, 0, 0) != 0) Libc.Exit(Fail("setresgid"u8, Descriptors.LastError));
            if (Libc.SetGroups(0, null) != 0) Libc.Exit(Fail("setgroups"u8, Descriptors.LastError));
            if (Libc.SetResUid(0, 0, 0) != 0) Libc.Exit(Fail("setresuid"u8, Descriptors.LastError));
            // Unshared from inside the user namespace, the PID namespace is owned by it; the next child is its PID 1.
            if (Libc.Unshare(CloneNewPid) != 0) Libc.Exit(Fail("unshare CLONE_NEWPID"u8, Descriptors.LastError));
            var infra = Libc.Fork();
            if (infra < 0) Libc.Exit(Fail("fork"u8, Descriptors.LastError));
            if (infra == 0)
            {
                for (var fd = 0; fd <= 2; fd++) _ = Libc.Dup2(devNull, fd);
                _ = Libc.Execve(argv[0], argv, environment);
                Libc.Exit(127);
            }
            Say(words.Infra, infra);
        }
        Say(words.Ready, 0);
        // Held until berthd has pinned the namespaces and closes stdin.
        while (AwaitLine())
        {
        }
        Libc.Exit(0);
    }

    private static bool AwaitLine()
    {
        byte b;
        while (true)
        {
            var n = Libc.Read(0, &b, 1);
            if (n > 0 && b == (byte)'\n') return true;
            if (n == 0 || n < 0 && Descriptors.LastError != Libc.EIntr) return false;
        }
    }

    /// <summary>A report line, formatted on the stack: <c>WORD PID</c>, or the word alone for PID 0.</summary>
    private static void Say(byte[] word, int pid)
    {
        Span<byte> line = stackalloc byte[32];
        word.CopyTo(line);
        var length = word.Length;
        if (pid > 0)
        {
            line[length++] = (byte)' ';
            length += FormatDecimal(pid, line[length..]);
        }
        line[length++] = (byte)'\n';
        WriteAll(line[..length]);
    }

    /// <summary>By hand, as number formatting may set up culture data on first use, which allocates.</summary>
    private static int FormatDecimal(int value, Span<byte> destination)
    {
        var digits = 0;
        for (var rest = value; digits == 0 || rest > 0; rest /= 10) digits++;
        for (var i = digits - 1; i >= 0; i--, value /= 10) destination[i] = (byte)('0' + value % 10);
        return digits;
    }

    private static int Fail(ReadOnlySpan<byte> call, int errno)
    {
        Span<byte> line = stackalloc byte[96];
        "error "u8.CopyTo(line);
        var length = 6;
        call.CopyTo(line[length..]);
        length += call.Length;
        " errno "u8.CopyTo(line[length..]);
        length += 7;
        length += FormatDecimal(errno, line[length..]);
        line[length++] = (byte)'\n';
        WriteAll(line[..length]);
        return 1;
    }

    private static void WriteAll(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = Libc.Write(1, p + done, (nuint)(data.Length - done));
                if (n < 0 && Descriptors.LastError == Libc.EIntr) continue;
                if (n <= 0) return;
                done += (int)n;
            }
        }
    }

    private sealed record Words(byte[] Child, byte[] Infra, byte[] Ready);
}
