using System.Globalization;
using Berth.Native;
using Berth.Sandbox.Native;

namespace Berth.Sandbox;

/// <summary>Counters of one network interface, as the pod's network namespace sees them.</summary>
public sealed record InterfaceUsage(string Name, ulong RxBytes, ulong RxErrors, ulong TxBytes, ulong TxErrors);

public sealed partial class SandboxManager
{
    /// <summary>
    /// The pod's interfaces (loopback left out), read from /proc/thread-self/net/dev on a thread inside the pod's
    /// network namespace. Null for a host-network pod, whose counters are the node's, or a pod that is not ready.
    /// </summary>
    public async Task<IReadOnlyList<InterfaceUsage>?> NetworkUsageAsync(string id, CancellationToken cancellationToken)
    {
        var record = Get(id);
        if (record is null || record.State != SandboxState.Ready || record.HostNetwork
            || !record.NamespacePaths.TryGetValue("network", out var netns))
            return null;
        try
        {
            var text = await Task.Run(() => InNetworkNamespace(netns, "berth-netstats", () => File.ReadAllText("/proc/thread-self/net/dev")), cancellationToken);
            return ParseNetDev(text);
        }
        catch (IOException)
        {
            return null; // the pod went away meanwhile
        }
    }

    /// <summary>/proc/net/dev: two header lines, then <c>name: rx bytes packets errs drop fifo frame compressed multicast tx bytes packets errs ...</c>.</summary>
    internal static IReadOnlyList<InterfaceUsage> ParseNetDev(string text)
    {
        var interfaces = new List<InterfaceUsage>();
        foreach (var line in text.Split('\n').Skip(2))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0) continue;
            var name = line[..colon].Trim();
            if (name == "lo") continue;
            var fields = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 16) continue;
            ulong Field(int i) => ulong.TryParse(fields[i], NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0;
            interfaces.Add(new InterfaceUsage(name, Field(0), Field(2), Field(8), Field(10)));
        }
        return interfaces;
    }

    /// <summary>Runs <paramref name="work"/> on a thread of its own that joined the network namespace at <paramref name="netns"/>.</summary>
    private static T InNetworkNamespace<T>(string netns, string threadName, Func<T> work) => NamespaceThread.Run(threadName, () =>
    {
        var fd = Descriptors.Open(netns, Descriptors.ORdOnly | Descriptors.OCloExec);
        if (fd < 0) throw Linux.Error("open", netns, Linux.LastError);
        var joined = Linux.SetNs(fd, Linux.CloneNewNet);
        var error = Linux.LastError;
        _ = Descriptors.Close(fd);
        if (joined != 0) throw Linux.Error("setns", netns, error);
        return work();
    });
}
