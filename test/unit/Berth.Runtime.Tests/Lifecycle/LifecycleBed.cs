using System.Collections.Concurrent;
using Berth.Records;
using Berth.Runtime.Containers;
using Berth.Runtime.Spec;
using Microsoft.Extensions.Logging.Abstractions;

namespace Berth.Runtime.Tests.Lifecycle;

/// <summary>A ContainerManager over a temporary root, a <see cref="FakeRuntime"/> and a <see cref="FakeRootfs"/>; no root needed.</summary>
internal sealed class LifecycleBed : IDisposable
{
    public static readonly PodSettings Pod = new() { Id = "pod1", Name = "pod", Namespace = "ns", Uid = "uid" };
    public static readonly ImageSettings Image = new() { ImageRef = "sha256:" + new string('a', 64), Cmd = ["/bin/app"] };

    private readonly string _root = Directory.CreateTempSubdirectory("berth-lifecycle-").FullName;

    public LifecycleBed(FakeRuntime? runtime = null)
    {
        Runtime = runtime ?? new FakeRuntime();
        Options = new ContainerOptions
        {
            DataDirectory = Path.Combine(_root, "data"),
            StateDirectory = Path.Combine(_root, "state"),
            BundleDirectory = Path.Combine(_root, "b"),
            ShimBinary = "/nonexistent/berth-shim",
            ArchiveUnpacker = new PlainTarUnpacker(),
            Handlers = new Dictionary<string, RuntimeHandlerSettings>(),
            CdiSpecDirs = [Path.Combine(_root, "cdi")],
        };
        Manager = NewManager();
    }

    public FakeRuntime Runtime { get; }

    /// <summary>The handlers the next manager is configured with, all served by <see cref="Runtime"/>.</summary>
    public List<string> Handlers { get; } = [""];

    public FakeRootfs Rootfs { get; } = new();

    public ContainerOptions Options { get; }

    public ContainerManager Manager { get; private set; }

    public ConcurrentQueue<(ContainerChangeKind Kind, string Id, ContainerState State)> Events { get; } = new();

    public string HostPaths => Path.Combine(_root, "host");

    /// <summary>The manager's CDI spec directory (made by the first spec written).</summary>
    public string CdiSpecs => Path.Combine(_root, "cdi");

    public static ContainerRequest Request(string name = "app", uint attempt = 0) => new()
    {
        Name = name, Attempt = attempt, PodNameKey = "pod_ns_uid_0", ImageSpec = "busybox", LowerDirs = ["/nonexistent/layer"],
    };

    public Task<ContainerRecord> CreateAsync(ContainerRequest? request = null, CancellationToken cancellationToken = default) =>
        Manager.CreateAsync(request ?? Request(), Pod, Image, cancellationToken);

    public async Task<ContainerRecord> RunningAsync(string name = "app")
    {
        var record = await CreateAsync(Request(name));
        await Manager.StartAsync(record.Id, CancellationToken.None);
        return Manager.Get(record.Id)!;
    }

    /// <summary>berthd stops (crashes) and starts again over the same directories.</summary>
    public async Task RestartAsync()
    {
        Crash();
        Manager = NewManager();
        await Manager.RecoverAsync(CancellationToken.None);
    }

    /// <summary>berthd is gone: nothing it watched reaches it any more.</summary>
    public void Crash()
    {
        Manager.Dispose();
        Runtime.ForgetWatches();
    }

    /// <summary>The container store as a second process would see it: for records a crash left halfway.</summary>
    public RecordStore<ContainerRecord> Records() =>
        new(Path.Combine(Options.DataDirectory, "records"), ContainerJsonContext.Default.ContainerRecord, r => r.Id, r => r.NameKey, "container", NullLogger.Instance);

    public string ExitFileOf(string id) => Path.Combine(Options.ExitDirectory, id);

    /// <summary>Waits for an asynchronous change (an exit taken from the watch) to reach the record.</summary>
    public async Task<ContainerRecord?> WaitForAsync(string id, Func<ContainerRecord?, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var record = Manager.Get(id);
            if (condition(record)) return record;
            if (DateTime.UtcNow > deadline) Assert.Fail($"container {id} did not get there in 10 s; it is {record?.State.ToString() ?? "gone"}");
            await Task.Delay(10);
        }
    }

    public string[] EventsOf(string id) => [.. Events.Where(e => e.Id == id).Select(e => $"{e.Kind}:{e.State}")];

    /// <summary>Nothing of the container is left on disk.</summary>
    public void AssertNoTraceOf(ContainerRecord record)
    {
        Assert.Null(Manager.Get(record.Id));
        Assert.False(Directory.Exists(record.Bundle), $"bundle {record.Bundle} is left");
        Assert.False(Directory.Exists(record.Directory), $"directory {record.Directory} is left");
        Assert.False(File.Exists(ExitFileOf(record.Id)), "the exit file is left");
        Assert.False(File.Exists(Path.Combine(Options.DataDirectory, "records", record.Id + ".json")), "the record is left");
    }

    private ContainerManager NewManager()
    {
        var manager = new ContainerManager(Options, Handlers.ToDictionary(h => h, IContainerRuntime (_) => Runtime), Rootfs, NullLogger.Instance);
        manager.Changed += change => Events.Enqueue((change.Kind, change.Record.Id, change.Record.State));
        return manager;
    }

    public void Dispose()
    {
        Manager.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}
