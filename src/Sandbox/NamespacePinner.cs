using System.Text;
using Berth.Native;
using Berth.Sandbox.Native;

namespace Berth.Sandbox;

/// <summary>Which of a pod's namespaces Berth creates (the others are the host's).</summary>
[Flags]
public enum PodNamespaces
{
    None = 0,
    Network = 1,
    Ipc = 2,
    Uts = 4,

    /// <summary>A user namespace of the pod's own, which owns its network, IPC and UTS namespaces (<see cref="UserNamespacePinner"/>).</summary>
    User = 8,
}

/// <summary>
/// Creates a pod's namespaces without any process to hold them: a dedicated thread unshares them, sets the
/// hostname and sysctls and brings up lo inside, bind-mounts each one onto a file (as <c>ip netns add</c> does),
/// then returns to the host's namespaces and ends. Containers join the pinned files by path.
/// </summary>
internal static class NamespacePinner
{
    private static readonly (PodNamespaces Kind, string File, int Flag)[] Kinds =
    [
        (PodNamespaces.Network, "net", Linux.CloneNewNet),
        (PodNamespaces.Ipc, "ipc", Linux.CloneNewIpc),
        (PodNamespaces.Uts, "uts", Linux.CloneNewUts),
        (PodNamespaces.User, "user", Linux.CloneNewUser),
    ];

    /// <summary>The pin file of one namespace kind under a sandbox's namespace directory.</summary>
    public static string PathOf(string directory, PodNamespaces kind) =>
        Path.Combine(directory, Kinds.Single(k => k.Kind == kind).File);

    public static void Create(string directory, PodNamespaces namespaces, string? hostname, IReadOnlyDictionary<string, string> sysctls)
    {
        if (namespaces == PodNamespaces.None) return;
        // A multithreaded process cannot unshare a user namespace; UserNamespacePinner makes those.
        if (namespaces.HasFlag(PodNamespaces.User)) throw new ArgumentException("a user namespace is not made here", nameof(namespaces));
        Directory.CreateDirectory(directory);
        try
        {
            NamespaceThread.Run("berth-netns", () => PinOnThisThread(directory, namespaces, hostname, sysctls));
        }
        catch
        {
            Remove(directory);
            throw;
        }
    }

    /// <summary>Whether the path is a namespace still: a pin whose bind mount is gone is an ordinary empty file.</summary>
    public static bool IsNamespace(string path) => Linux.FilesystemType(path) == Linux.NsfsMagic;

    /// <summary>Unmounts and deletes the pins; missing ones are fine (idempotent).</summary>
    public static void Remove(string directory)
    {
        if (!Directory.Exists(directory)) return;
        foreach (var file in Kinds.Select(k => k.File).Append(PodInfra.PidPin))
        {
            var path = Path.Combine(directory, file);
            if (!File.Exists(path)) continue;
            // EINVAL: not a mount point (a pin whose mount never happened); the file just goes.
            if (Linux.Umount2(path, Linux.MntDetach) != 0 && Linux.LastError is not 22 and not 2)
                throw Linux.Error("umount", path, Linux.LastError);
            File.Delete(path);
        }
        Directory.Delete(directory);
    }

    /// <summary>Pins the namespaces of a process (one that holds them for a moment, or the pod's infra).</summary>
    public static void Adopt(string directory, int pid, PodNamespaces namespaces)
    {
        Directory.CreateDirectory(directory);
        foreach (var (kind, _, _) in Kinds.Where(k => namespaces.HasFlag(k.Kind))) Pin(directory, kind, pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Sets the hostname and sysctls and brings up lo in pinned namespaces that were made elsewhere, from a thread that
    /// joins them for the purpose: as root of the node, berthd may join namespaces that another user namespace owns.
    /// The kernel lets only the owning user namespace's root write an IPC namespace's sysctls (it compares the writer's
    /// effective UID, whatever its capabilities), and a network namespace's only with CAP_NET_ADMIN over it, which that
    /// UID lacks here: so IPC sysctls are written with this thread's effective UID set to <paramref name="ipcSysctlWriter"/>
    /// (and set back after), the others as root.
    /// </summary>
    public static void Configure(string directory, PodNamespaces namespaces, string? hostname, IReadOnlyDictionary<string, string> sysctls, uint ipcSysctlWriter) =>
        NamespaceThread.Run("berth-netns", () =>
        {
            var joined = Kinds.Where(k => k.Kind != PodNamespaces.User && namespaces.HasFlag(k.Kind)).ToList();
            var originals = new List<(int Fd, int Flag)>();
            try
            {
                foreach (var (_, file, flag) in joined)
                {
                    originals.Add((OpenOrThrow($"/proc/thread-self/ns/{file}"), flag));
                    var fd = OpenOrThrow(Path.Combine(directory, file));
                    var result = Linux.SetNs(fd, flag);
                    var error = Linux.LastError;
                    _ = Descriptors.Close(fd);
                    if (result != 0) throw Linux.Error("setns", Path.Combine(directory, file), error);
                }
                ConfigureHere(namespaces, hostname, sysctls.Where(s => !IsIpcSysctl(s.Key)).ToDictionary());
                var ipc = sysctls.Where(s => IsIpcSysctl(s.Key)).ToDictionary();
                if (ipc.Count > 0) AsThreadUser(ipcSysctlWriter, () => ConfigureHere(PodNamespaces.None, null, ipc));
            }
            finally
            {
                foreach (var (fd, flag) in originals)
                {
                    _ = Linux.SetNs(fd, flag);
                    _ = Descriptors.Close(fd);
                }
            }
        });

    /// <summary>The sysctls of an IPC namespace: System V shared memory, messages and semaphores, and POSIX message queues.</summary>
    public static bool IsIpcSysctl(string key) =>
        key.StartsWith("kernel.shm", StringComparison.Ordinal) || key.StartsWith("kernel.msg", StringComparison.Ordinal)
        || key == "kernel.sem" || key.StartsWith("fs.mqueue.", StringComparison.Ordinal);

    /// <summary>
    /// Runs work with the calling thread's effective UID changed, by the raw syscall: glibc's setresuid would change
    /// every thread of berthd. The real and saved UIDs stay 0, so the thread may take back its own.
    /// </summary>
    private static void AsThreadUser(uint uid, Action work)
    {
        if (Linux.SetThreadEffectiveUid(uid) != 0) throw Linux.Error("setresuid", $"to effective UID {uid} on the sysctl thread", Linux.LastError);
        try
        {
            work();
        }
        finally
        {
            // Should it fail, the thread still ends with the work, and its credentials with it.
            _ = Linux.SetThreadEffectiveUid(0);
        }
    }

    private static int OpenOrThrow(string path)
    {
        var fd = Descriptors.Open(path, Descriptors.ORdOnly | Descriptors.OCloExec);
        return fd >= 0 ? fd : throw Linux.Error("open", path, Linux.LastError);
    }

    /// <summary>Bind-mounts /proc/&lt;process&gt;/ns/&lt;kind&gt; onto its pin file, as <c>ip netns add</c> does.</summary>
    private static void Pin(string directory, PodNamespaces kind, string process)
    {
        var pin = PathOf(directory, kind);
        var file = Path.GetFileName(pin);
        File.WriteAllBytes(pin, []);
        if (Linux.Mount($"/proc/{process}/ns/{file}", pin, null, Linux.MsBind, 0) != 0)
            throw Linux.Error("bind-mount", pin, Linux.LastError);
    }

    private static void ConfigureHere(PodNamespaces namespaces, string? hostname, IReadOnlyDictionary<string, string> sysctls)
    {
        if (namespaces.HasFlag(PodNamespaces.Uts) && hostname is not null) SetHostname(hostname);
        if (namespaces.HasFlag(PodNamespaces.Network)) BringUpLoopback();
        foreach (var (key, value) in sysctls) WriteSysctl(key, value);
    }

    private static void PinOnThisThread(string directory, PodNamespaces namespaces, string? hostname, IReadOnlyDictionary<string, string> sysctls)
    {
        var wanted = Kinds.Where(k => namespaces.HasFlag(k.Kind)).ToList();
        var originals = new List<(int Fd, int Flag)>();
        try
        {
            foreach (var (_, file, flag) in wanted) originals.Add((OpenOrThrow($"/proc/thread-self/ns/{file}"), flag));
            if (Linux.Unshare(wanted.Aggregate(0, (flags, k) => flags | k.Flag)) != 0)
                throw Linux.Error("unshare", "pod namespaces", Linux.LastError);
            ConfigureHere(namespaces, hostname, sysctls);
            foreach (var (kind, _, _) in wanted) Pin(directory, kind, "thread-self");
        }
        finally
        {
            // Back to the host's namespaces before the thread ends, so nothing else ever runs in the pod's.
            foreach (var (fd, flag) in originals)
            {
                _ = Linux.SetNs(fd, flag);
                _ = Descriptors.Close(fd);
            }
        }
    }

    private static unsafe void SetHostname(string hostname)
    {
        var bytes = Encoding.ASCII.GetBytes(hostname);
        fixed (byte* p = bytes)
        {
            if (Linux.SetHostname(p, (nuint)bytes.Length) != 0) throw Linux.Error("sethostname", hostname, Linux.LastError);
        }
    }

    private static unsafe void BringUpLoopback()
    {
        var socket = Linux.Socket(Linux.AfInet, Linux.SockDgram | Linux.SockCloexec, 0);
        if (socket < 0) throw Linux.Error("socket", "for lo", Linux.LastError);
        try
        {
            var request = default(Linux.IfReq);
            request.Name[0] = (byte)'l';
            request.Name[1] = (byte)'o';
            if (Linux.Ioctl(socket, Linux.SiocGifFlags, &request) != 0) throw Linux.Error("SIOCGIFFLAGS", "lo", Linux.LastError);
            request.Flags |= Linux.IffUp;
            if (Linux.Ioctl(socket, Linux.SiocSifFlags, &request) != 0) throw Linux.Error("SIOCSIFFLAGS", "lo", Linux.LastError);
        }
        finally
        {
            _ = Descriptors.Close(socket);
        }
    }

    /// <summary>/proc/sys resolves per thread, so on this thread a key lands in the pod's namespaces.</summary>
    private static void WriteSysctl(string key, string value)
    {
        var path = "/proc/sys/" + key.Replace('.', '/');
        try
        {
            File.WriteAllText(path, value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SandboxRequestException($"linux.sysctls: cannot set {key}={value}: {e.Message}");
        }
    }
}
