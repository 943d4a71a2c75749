using Berth.Cri.V1;
using CliWrap;
using CliWrap.Buffered;

namespace Berth.Cli.Pods;

/// <summary>
/// <c>berth play --down</c>: what berth play made for a pod, stopped and removed, as the kubelet does when a pod is
/// deleted: containers (with the grace period), the sandbox, the volumes, the log directory and the pod's cgroup.
/// </summary>
internal static class PodTeardown
{
    public static async Task<List<PodSandbox>> FindAsync(CriConnection cri, PodTranslator pod, CancellationToken cancellationToken)
    {
        var filter = new PodSandboxFilter
        {
            LabelSelector =
            {
                [PodTranslator.PlayLabel] = "true",
                [PodTranslator.PodNameLabel] = pod.Name,
                [PodTranslator.PodNamespaceLabel] = pod.Namespace,
            },
        };
        return (await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = filter }, deadline: cri.Deadline, cancellationToken: cancellationToken)).Items.ToList();
    }

    public static async Task RemoveAsync(CriConnection cri, PodTranslator pod, PodVolumes volumes, string? sandboxId, CancellationToken cancellationToken)
    {
        if (sandboxId is not null)
        {
            var containers = (await cri.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = sandboxId } },
                deadline: cri.Deadline, cancellationToken: cancellationToken)).Containers;
            await Task.WhenAll(containers.Where(c => c.State == ContainerState.ContainerRunning).Select(c =>
                cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = c.Id, Timeout = pod.GracePeriod }, cancellationToken: cancellationToken).ResponseAsync));
            foreach (var container in containers)
                await cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = container.Id }, deadline: cri.Deadline, cancellationToken: cancellationToken);
            await cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = sandboxId }, cancellationToken: cancellationToken);
            await cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = sandboxId }, cancellationToken: cancellationToken);
        }
        volumes.Remove();
        RemoveLogs(pod);
        await RemoveCgroupAsync(pod.CgroupParent, cancellationToken);
    }

    public static void RemoveLogs(PodTranslator pod)
    {
        if (Directory.Exists(pod.LogDirectory)) Directory.Delete(pod.LogDirectory, recursive: true);
        // /var/log/pods itself goes once empty: the kubelet makes it again for its first pod.
        var logs = Path.GetDirectoryName(pod.LogDirectory)!;
        try
        {
            if (Directory.Exists(logs) && !Directory.EnumerateFileSystemEntries(logs).Any()) Directory.Delete(logs);
        }
        catch (IOException)
        {
            // Another pod's logs arrived meanwhile.
        }
    }

    /// <summary>
    /// The pod's cgroup and, once empty, its QoS and root parents, in every hierarchy. The runtime removes each
    /// container's own cgroup; the pod level is the kubelet's, so here berth play's.
    /// </summary>
    private static async Task RemoveCgroupAsync(string cgroupParent, CancellationToken cancellationToken)
    {
        if (!cgroupParent.StartsWith('/'))
        {
            await StopSlicesAsync(cgroupParent, cancellationToken);
            return;
        }
        var hierarchies = File.Exists("/sys/fs/cgroup/cgroup.controllers")
            ? ["/sys/fs/cgroup"]
            : Directory.EnumerateDirectories("/sys/fs/cgroup").Where(d => !new FileInfo(d).Attributes.HasFlag(FileAttributes.ReparsePoint)).ToArray();
        foreach (var hierarchy in hierarchies)
        {
            // The runtime's removal of the last container's cgroup can trail its RPC's answer (seen in the v2 half
            // of a hybrid host), so the pod's own cgroup gets a moment to empty.
            var pod = hierarchy + cgroupParent;
            for (var wait = 0; wait < 20 && Directory.Exists(pod) && Directory.EnumerateDirectories(pod).Any(); wait++) await Task.Delay(100, cancellationToken);
            for (var path = cgroupParent; path.Length > 1 && path.Contains('/', StringComparison.Ordinal); path = Path.GetDirectoryName(path)!)
            {
                var directory = hierarchy + path;
                if (!Directory.Exists(directory)) continue;
                try
                {
                    Directory.Delete(directory);
                }
                catch (IOException)
                {
                    break; // not empty: another pod is still in it
                }
            }
        }
    }

    /// <summary>
    /// systemd keeps a slice active after its last scope went, so the pod's slice is stopped, as the kubelet's
    /// systemd cgroup manager does, and then each parent slice that no other pod is in.
    /// </summary>
    private static async Task StopSlicesAsync(string slice, CancellationToken cancellationToken)
    {
        foreach (var (unit, path) in SliceAndParents(slice))
        {
            for (var wait = 0; wait < 20 && Directory.Exists(path) && Directory.EnumerateDirectories(path).Any(); wait++) await Task.Delay(100, cancellationToken);
            if (Directory.Exists(path) && Directory.EnumerateDirectories(path).Any()) return;
            var stop = await CliWrap.Cli.Wrap("systemctl").WithArguments(["stop", unit]).WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(cancellationToken);
            if (stop.ExitCode != 0) throw new CliException($"systemctl stop {unit}: {stop.StandardError.Trim()}");
        }
    }

    /// <summary>A slice and its parents by systemd's naming (a-b-c.slice is in a-b.slice, in a.slice), with their cgroup v2 paths.</summary>
    internal static IEnumerable<(string Unit, string Path)> SliceAndParents(string slice)
    {
        var parts = slice[..^".slice".Length].Split('-');
        var names = Enumerable.Range(1, parts.Length).Select(n => string.Join('-', parts[..n]) + ".slice").ToArray();
        for (var depth = names.Length; depth > 0; depth--)
            yield return (names[depth - 1], "/sys/fs/cgroup/" + string.Join('/', names[..depth]));
    }
}
