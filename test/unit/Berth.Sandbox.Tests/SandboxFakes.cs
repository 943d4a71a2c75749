using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Berth.Cni;

namespace Berth.Sandbox.Tests;

/// <summary>A pod network that hands out 10.88.0.N and logs each call; any call can be made to fail.</summary>
internal sealed class FakeNetwork : IPodNetwork
{
    private int _next = 1;

    public ConcurrentQueue<string> Calls { get; } = new();

    public ConcurrentDictionary<string, Exception> Failures { get; } = new();

    public List<CniRuntimeConfig> Deleted { get; } = [];

    public IReadOnlySet<string>? LastLive { get; private set; }

    public Task<CniResult> AddAsync(CniRuntimeConfig runtime, CancellationToken cancellationToken)
    {
        Call("add");
        var ip = $"10.88.0.{Interlocked.Increment(ref _next)}";
        var raw = new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["interfaces"] = new JsonArray(new JsonObject { ["name"] = "eth0", ["sandbox"] = runtime.NetnsPath }),
            ["ips"] = new JsonArray(new JsonObject { ["address"] = ip + "/16", ["interface"] = 0 }),
        };
        return Task.FromResult(CniResultParser.Parse(raw));
    }

    public Task DelAsync(CniRuntimeConfig runtime, bool onlyIfAdded, CancellationToken cancellationToken)
    {
        Call(onlyIfAdded ? "del-if-added" : "del");
        lock (Deleted) Deleted.Add(runtime);
        return Task.CompletedTask;
    }

    public Task<(bool Ready, string Reason)> StatusAsync(CancellationToken cancellationToken) => Task.FromResult((true, ""));

    public Task<IReadOnlyList<string>> GarbageCollectAsync(IReadOnlySet<string> liveContainerIds, CancellationToken cancellationToken)
    {
        Call("gc");
        LastLive = liveContainerIds;
        return Task.FromResult<IReadOnlyList<string>>([]);
    }

    private void Call(string call)
    {
        Calls.Enqueue(call);
        if (Failures.TryGetValue(call, out var failure)) throw failure;
    }
}

/// <summary>Namespaces as plain files, an infra process that is a number, /dev/shm as a directory: no root needed.</summary>
internal sealed class FakePodHost : IPodHost
{
    private int _nextPid = 5000;

    public ConcurrentQueue<string> Calls { get; } = new();

    public ConcurrentDictionary<string, Exception> Failures { get; } = new();

    public HashSet<int> DeadInfras { get; } = [];

    /// <summary>Pins that are no namespace any more (unmounted by hand, or /run emptied by a reboot).</summary>
    public HashSet<string> Gone { get; } = [];

    public void CreateNamespaces(string nsDirectory, PodNamespaces namespaces, string? hostname, IReadOnlyDictionary<string, string> sysctls)
    {
        Call("namespaces");
        Directory.CreateDirectory(nsDirectory);
        foreach (var kind in Enum.GetValues<PodNamespaces>().Where(k => k != PodNamespaces.None && namespaces.HasFlag(k)))
            File.WriteAllText(NamespacePinner.PathOf(nsDirectory, kind), "");
    }

    public Task<InfraProcess?> CreateUserNamespacesAsync(
        string sandboxId, string nsDirectory, UserNamespaceMapping mapping, bool sharedPid, string hostname,
        IReadOnlyDictionary<string, string> sysctls, CancellationToken cancellationToken)
    {
        Call("user-namespaces");
        Directory.CreateDirectory(nsDirectory);
        foreach (var kind in new[] { PodNamespaces.User, PodNamespaces.Network, PodNamespaces.Ipc, PodNamespaces.Uts })
            File.WriteAllText(NamespacePinner.PathOf(nsDirectory, kind), "");
        if (!sharedPid) return Task.FromResult<InfraProcess?>(null);
        File.WriteAllText(Path.Combine(nsDirectory, PodInfra.PidPin), "");
        return Task.FromResult<InfraProcess?>(new InfraProcess(Interlocked.Increment(ref _nextPid), 1));
    }

    public bool IsNamespace(string path) => File.Exists(path) && !Gone.Contains(path);

    public void RemoveNamespaces(string nsDirectory)
    {
        Call("remove-namespaces");
        if (Directory.Exists(nsDirectory)) Directory.Delete(nsDirectory, recursive: true);
    }

    public InfraProcess StartInfra(string sandboxId, string nsDirectory, IReadOnlyDictionary<string, string> namespacePaths)
    {
        Call("infra");
        File.WriteAllText(Path.Combine(nsDirectory, PodInfra.PidPin), "");
        return new InfraProcess(Interlocked.Increment(ref _nextPid), 1);
    }

    public bool IsInfraAlive(InfraProcess infra) => !DeadInfras.Contains(infra.Pid);

    public Task StopInfraAsync(string sandboxId, CancellationToken cancellationToken)
    {
        Call("stop-infra");
        return Task.CompletedTask;
    }

    public void CreateShm(string sandboxDirectory, (uint Uid, uint Gid)? owner)
    {
        Call("shm");
        Directory.CreateDirectory(Path.Combine(sandboxDirectory, PodShm.Directory));
    }

    public void RemoveShm(string sandboxDirectory) => Call("remove-shm");

    private void Call(string call)
    {
        Calls.Enqueue(call);
        if (Failures.TryGetValue(call, out var failure)) throw failure;
    }
}

/// <summary>Keeps every line logged at warning or above, with its level.</summary>
internal sealed class WarningLog : Microsoft.Extensions.Logging.ILogger
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Warning;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel)) Lines.Enqueue($"{logLevel}: {formatter(state, exception)}");
    }
}
