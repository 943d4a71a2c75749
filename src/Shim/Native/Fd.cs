using System.Text;
using Berth.Native;

namespace Berth.Shim.Native;

/// <summary>File descriptor plumbing: pipes, unix sockets, passing a descriptor, spawning with chosen stdio.</summary>
internal static unsafe class Fd
{
    public static (int Read, int Write) Pipe()
    {
        var fds = stackalloc int[2];
        if (Libc.Pipe2(fds, Descriptors.OCloExec) != 0) throw Failure("pipe2");
        return (fds[0], fds[1]);
    }

    public static int OpenDevNull() =>
        Descriptors.Open("/dev/null", Descriptors.ORdWr | Descriptors.OCloExec) is var fd and >= 0 ? fd : throw Failure("open /dev/null");

    /// <summary>A listening unix stream socket at a path relative to the working directory.</summary>
    public static int Listen(string path)
    {
        File.Delete(path);
        var fd = Libc.Socket(Libc.AfUnix, Libc.SockStream | Libc.SockCloExec, 0);
        if (fd < 0) throw Failure("socket");
        var address = stackalloc byte[110];
        address[0] = Libc.AfUnix;
        var length = Encoding.UTF8.GetBytes(path, new Span<byte>(address + 2, 107));
        if (Libc.Bind(fd, address, (uint)(2 + length + 1)) != 0 || Libc.Listen(fd, 16) != 0)
        {
            var error = Failure($"listen on {path}");
            _ = Descriptors.Close(fd);
            throw error;
        }
        return fd;
    }

    public static void SetNonBlocking(int fd)
    {
        var flags = Libc.Fcntl(fd, Libc.FGetFl, 0);
        if (flags < 0 || Libc.Fcntl(fd, Libc.FSetFl, flags | Libc.ONonBlock) < 0) throw Failure("fcntl O_NONBLOCK");
    }

    public static int Accept(int listener, bool nonBlocking = false) =>
        Libc.Accept4(listener, null, null, Libc.SockCloExec | (nonBlocking ? Libc.ONonBlock : 0));

    /// <summary>Receives one descriptor sent with SCM_RIGHTS (runc's console socket sends the pty master so).</summary>
    public static int ReceiveFd(int socket)
    {
        var data = stackalloc byte[256];
        var control = stackalloc byte[64];
        var iov = new Libc.IoVec { Base = data, Length = 256 };
        var message = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = 64 };
        nint received;
        do received = Libc.RecvMsg(socket, &message, 0);
        while (received < 0 && Descriptors.LastError == Libc.EIntr);
        if (received < 0) throw Failure("recvmsg");
        // struct cmsghdr: size_t len, int level, int type, then the descriptors.
        if (message.ControlLength < 20 || *(int*)(control + 8) != Libc.SolSocket || *(int*)(control + 12) != Libc.ScmRights)
            throw new IOException("the console socket sent no descriptor");
        return *(int*)(control + 16);
    }

    /// <summary>Starts a program with the given descriptors as its stdin, stdout and stderr.</summary>
    public static int Spawn(string program, IReadOnlyList<string> args, int stdin, int stdout, int stderr)
    {
        var strings = new List<nint>();
        byte* Utf8(string value)
        {
            var bytes = Encoding.UTF8.GetBytes(value + "\0");
            var memory = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)bytes.Length);
            bytes.CopyTo(new Span<byte>(memory, bytes.Length));
            strings.Add((nint)memory);
            return memory;
        }

        var environment = Environment.GetEnvironmentVariables();
        var argv = stackalloc byte*[args.Count + 2];
        var envp = stackalloc byte*[environment.Count + 1];
        var actions = stackalloc byte[256]; // posix_spawn_file_actions_t is 80 bytes on glibc
        try
        {
            var path = Utf8(program);
            argv[0] = path;
            for (var i = 0; i < args.Count; i++) argv[i + 1] = Utf8(args[i]);
            argv[args.Count + 1] = null;
            var e = 0;
            foreach (System.Collections.DictionaryEntry entry in environment) envp[e++] = Utf8($"{entry.Key}={entry.Value}");
            envp[e] = null;

            _ = Libc.FileActionsInit(actions);
            _ = Libc.FileActionsAddDup2(actions, stdin, 0);
            _ = Libc.FileActionsAddDup2(actions, stdout, 1);
            _ = Libc.FileActionsAddDup2(actions, stderr, 2);
            var result = Libc.PosixSpawn(out var pid, path, actions, null, argv, envp);
            _ = Libc.FileActionsDestroy(actions);
            if (result != 0) throw new IOException($"cannot run {program}: error {result}");
            return pid;
        }
        finally
        {
            foreach (var memory in strings) System.Runtime.InteropServices.NativeMemory.Free((void*)memory);
        }
    }

    public static void WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* start = data)
        {
            var offset = 0;
            while (offset < data.Length)
            {
                var written = Libc.Write(fd, start + offset, (nuint)(data.Length - offset));
                if (written < 0)
                {
                    if (Descriptors.LastError == Libc.EIntr) continue;
                    throw Failure("write");
                }
                offset += (int)written;
            }
        }
    }

    /// <summary>Reads what is there: the count, 0 at end of stream (EIO from a pty master whose slave closed counts as end).</summary>
    public static int Read(int fd, Span<byte> buffer)
    {
        fixed (byte* start = buffer)
        {
            while (true)
            {
                var read = Libc.Read(fd, start, (nuint)buffer.Length);
                if (read >= 0) return (int)read;
                var error = Descriptors.LastError;
                if (error == Libc.EIntr) continue;
                if (error == Libc.EAgain) return -1;
                return 0;
            }
        }
    }

    /// <summary>A whole (small) file, read with read(2): the shim does without FileStream and StreamReader.</summary>
    public static byte[] ReadFile(string path)
    {
        var fd = Descriptors.Open(path, Descriptors.ORdOnly | Descriptors.OCloExec);
        if (fd < 0) throw Failure($"open {path}");
        try
        {
            var content = new byte[4096];
            var length = 0;
            int read;
            while ((read = Read(fd, content.AsSpan(length))) > 0)
            {
                length += read;
                if (length == content.Length) Array.Resize(ref content, content.Length * 2);
            }
            return content[..length];
        }
        finally
        {
            _ = Descriptors.Close(fd);
        }
    }

    /// <summary>Writes a file under a temporary name, syncs it and renames it into place: readers see all of it or none.</summary>
    public static void WriteFileAtomically(string path, ReadOnlySpan<byte> content)
    {
        var temporary = path + Berth.ShimProtocol.ShimExitStatus.TemporarySuffix;
        var fd = Descriptors.Open(temporary, Descriptors.OWrOnly | Descriptors.OCreat | Descriptors.OTrunc | Descriptors.OCloExec, 0x1A4 /* 0644 */);
        if (fd < 0) throw Failure($"open {temporary}");
        try
        {
            WriteAll(fd, content);
            Descriptors.Fsync(fd, temporary);
        }
        finally
        {
            _ = Descriptors.Close(fd);
        }
        if (Libc.Rename(temporary, path) != 0) throw Failure($"rename {temporary}");
    }

    /// <summary>Text to a descriptor (stdout, stderr) without Console, whose terminal handling a shim does not need.</summary>
    public static void WriteText(int fd, string text)
    {
        try
        {
            WriteAll(fd, Encoding.UTF8.GetBytes(text));
        }
        catch (IOException)
        {
            // Nobody reads it any more.
        }
    }

    public static IOException Failure(string what) => new($"{what}: errno {Descriptors.LastError}");
}
