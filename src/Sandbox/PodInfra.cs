using System.Diagnostics;
using Berth.Native;
using Berth.Sandbox.Native;
using Berth.ShimProtocol;

namespace Berth.Sandbox;

/// <summary>A running infra process, identified by PID and start time so that a reused PID is never mistaken for it.</summary>
public sealed record InfraProcess(
    [property: System.Text.Json.Serialization.JsonPropertyName("pid")] int Pid,
    [property: System.Text.Json.Serialization.JsonPropertyName("startTime")] ulong StartTime);

/// <summary>
/// The infra process of a pod that shares one PID namespace: <c>berth-shim pause</c>, started as PID 1 of a new
/// PID namespace inside the pod's other namespaces, whose PID namespace is pinned beside them for containers to
/// join. It runs in its own session and outlives berthd, like the containers will.
/// </summary>
internal static class PodInfra
{
    public const string PidPin = "pid";

    public static InfraProcess Start(string binary, string sandboxId, string nsDirectory, IReadOnlyDictionary<string, string> namespacePaths)
    {
        if (!File.Exists(binary)) throw new FileNotFoundException($"the infra binary {binary} does not exist (runtime.shim_binary)");
        var started = NamespaceThread.Run("berth-infra", () => StartOnThisThread(binary, sandboxId, namespacePaths));
        PinPidNamespace(nsDirectory, started.Pid);
        return started;
    }

    /// <summary>Pins the infra's PID namespace beside the pod's other namespaces, for containers to join.</summary>
    public static void PinPidNamespace(string nsDirectory, int infraPid)
    {
        var pin = Path.Combine(nsDirectory, PidPin);
        File.WriteAllBytes(pin, []);
        if (Linux.Mount($"/proc/{infraPid}/ns/pid", pin, null, Linux.MsBind, 0) != 0)
            throw Linux.Error("bind-mount", pin, Linux.LastError);
    }

    public static bool IsAlive(InfraProcess infra) => ProcFs.StartTimeOf(infra.Pid) == infra.StartTime;

    /// <summary>
    /// Kills the pod's infra (and with it everything in its PID namespace) and waits until it is gone. It is
    /// found by its command line, so one started just before a crash, before its PID was recorded, dies too.
    /// </summary>
    public static async Task StopAsync(string binary, string sandboxId, CancellationToken cancellationToken)
    {
        var pids = ProcFs.FindByCmdline(PodInfraCommandLine.CmdlinePrefix(binary, sandboxId));
        foreach (var pid in pids) ProcFs.Kill(pid);
        var deadline = Stopwatch.StartNew();
        while (pids.Any(ProcFs.IsRunning))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(10))
                throw new IOException($"the infra process of sandbox {sandboxId} did not die after SIGKILL");
            await Task.Delay(10, cancellationToken);
        }
    }

    private static InfraProcess StartOnThisThread(string binary, string sandboxId, IReadOnlyDictionary<string, string> namespacePaths)
    {
        var originals = new List<(int Fd, int Flag)>();
        try
        {
            foreach (var (kind, flag) in new[] { ("net", Linux.CloneNewNet), ("ipc", Linux.CloneNewIpc), ("uts", Linux.CloneNewUts), ("pid", Linux.CloneNewPid) })
            {
                var fd = Descriptors.Open($"/proc/thread-self/ns/{kind}", Descriptors.ORdOnly | Descriptors.OCloExec);
                if (fd < 0) throw Linux.Error("open", $"/proc/thread-self/ns/{kind}", Linux.LastError);
                originals.Add((fd, flag));
            }
            foreach (var (kind, path) in namespacePaths)
            {
                var flag = kind switch { "network" => Linux.CloneNewNet, "ipc" => Linux.CloneNewIpc, "uts" => Linux.CloneNewUts, _ => 0 };
                if (flag == 0) continue;
                var fd = Descriptors.Open(path, Descriptors.ORdOnly | Descriptors.OCloExec);
                if (fd < 0) throw Linux.Error("open", path, Linux.LastError);
                var joined = Linux.SetNs(fd, flag);
                var error = Linux.LastError;
                _ = Descriptors.Close(fd);
                if (joined != 0) throw Linux.Error("setns", path, error);
            }
            // The first child this thread forks from here on is PID 1 of a new PID namespace.
            if (Linux.Unshare(Linux.CloneNewPid) != 0) throw Linux.Error("unshare", "a PID namespace", Linux.LastError);

            var start = new ProcessStartInfo(binary) { UseShellExecute = false };
            foreach (var argument in PodInfraCommandLine.ToArguments(sandboxId)) start.ArgumentList.Add(argument);
            using var process = Process.Start(start) ?? throw new IOException($"{binary} did not start");
            var startTime = ProcFs.StartTimeOf(process.Id)
                            ?? throw new IOException($"the infra process of sandbox {sandboxId} exited at once");
            return new InfraProcess(process.Id, startTime);
        }
        finally
        {
            foreach (var (fd, flag) in originals)
            {
                _ = Linux.SetNs(fd, flag);
                _ = Descriptors.Close(fd);
            }
        }
    }
}
