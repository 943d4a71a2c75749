using Berth.Cri.V1;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// One pure cgroup v2 guest (<see cref="NodeVm"/>) shared by a class's tests, its berthd with a runc and a crun
/// handler, and the busybox test image pulled from a registry on this machine's loopback.
/// </summary>
public class NodeTestBed : IAsyncLifetime
{
    private static readonly string[] Applets = ["echo", "sleep", "cat", "tail", "head", "grep", "ls", "true", "dd", "yes", "cut"];

    private RegistryServer? _registry;
    private NodeVm? _vm;

    public NodeVm Vm => _vm ?? throw new InvalidOperationException("not started");

    public string Image { get; private set; } = "";

    /// <summary>systemd as the guest's PID 1, running berthd from the shipped berth.service.</summary>
    protected virtual bool Systemd => false;

    /// <summary>TOML over the guest berthd's config: handlers for runc and crun, a pids limit, stats every second, a CDI spec directory.</summary>
    protected virtual string ExtraConfig =>
        "[runtime]\ndefault_handler = \"runc\"\npids_limit = 1024\n[runtime.handlers.runc]\nbinary = \"/usr/sbin/runc\"\n"
        + "[runtime.handlers.crun]\nbinary = \"/usr/bin/crun\"\n[stats]\ncollect_period = \"1s\"\n"
        + $"[cdi]\nspec_dirs = [\"{CdiSpecDirectory}\"]\n"
        // The tests' NRI plugin is JIT-compiled .NET, whose first calls take seconds under software emulation.
        + "[nri]\nplugin_registration_timeout = \"60s\"\nplugin_request_timeout = \"30s\"\n";

    /// <summary>
    /// The guest berthd's CDI spec directory, in the guest's own /run: a file this machine writes into a directory the
    /// guest sees over 9p raises no inotify event there. <see cref="WriteInGuestAsync"/> puts specs in it.
    /// </summary>
    public const string CdiSpecDirectory = "/run/berth-test-cdi";

    /// <summary>Writes a file in the guest (its directory made first), as a driver on the node would.</summary>
    public async Task WriteInGuestAsync(string path, string content) =>
        await Vm.ShellAsync($"mkdir -p {Path.GetDirectoryName(path)} && echo {Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(content))} | base64 -d > {path}");

    /// <summary>Shell lines the guest runs before berthd starts (<see cref="NodeVmOptions.GuestCommands"/>).</summary>
    protected virtual string GuestCommands => "";

    /// <summary>hack/package's .deb to install in the guest instead of running the built binaries (see <see cref="NodeVmOptions.Package"/>).</summary>
    protected virtual Task<string?> PackageAsync() => Task.FromResult<string?>(null);

    public async Task InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        using (var pusher = new RegistryPusher(_registry))
        {
            var applets = TestLayers.Tar(w =>
            {
                TestLayers.Dir(w, "bin/");
                foreach (var applet in Applets) TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, $"bin/{applet}", "busybox");
                TestLayers.Dir(w, "proc/");
                TestLayers.Dir(w, "sys/");
                TestLayers.Dir(w, "dev/");
            });
            await pusher.PushAsync("busybox", new TestImageBuilder().Layer(TestLayers.Base()).Layer(applets).Build(), "test");
        }
        _vm = await NodeVm.StartAsync(new NodeVmOptions
        {
            RegistryPort = _registry.Port,
            Systemd = Systemd,
            Package = await PackageAsync(),
            ExtraConfig = ExtraConfig,
            GuestCommands = GuestCommands,
        });
        Image = $"{_registry.Host}/busybox:test";
        await _vm.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = Image } });
    }

    public virtual async Task DisposeAsync()
    {
        if (_vm is not null) await _vm.DisposeAsync();
        if (_registry is not null) await _registry.DisposeAsync();
    }

    /// <summary>Pushes an image to the bed's registry, which the guest pulls from; returns its name there.</summary>
    public async Task<string> PushAsync(string repository, TestImage image)
    {
        using var pusher = new RegistryPusher(_registry!);
        await pusher.PushAsync(repository, image, "test");
        return $"{_registry!.Host}/{repository}:test";
    }

    /// <summary>
    /// A pod under the runtime handler, in the node's network namespace (the guest has no CNI network but where a bed
    /// writes one), or with its own network and the given user namespace.
    /// </summary>
    public async Task<(string Id, PodSandboxConfig Config)> RunPodAsync(
        string name, string handler = "", string? cgroupParent = null, bool privileged = false, UserNamespace? userns = null, bool ownNetwork = false)
    {
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = "default", Uid = Guid.NewGuid().ToString() },
            Hostname = name,
            LogDirectory = $"/run/berth-test-logs/{name}",
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = cgroupParent ?? "",
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    Privileged = privileged,
                    NamespaceOptions = new NamespaceOption { Network = userns is null && !ownNetwork ? NamespaceMode.Node : NamespaceMode.Pod, UsernsOptions = userns },
                },
            },
        };
        var id = (await Vm.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = handler })).PodSandboxId;
        return (id, config);
    }

    public Task<string> RunAsync(string podId, PodSandboxConfig pod, string name, LinuxContainerResources? resources, params string[] command) =>
        RunAsync(podId, pod, name, resources, privileged: false, command);

    public Task<string> RunAsync(string podId, PodSandboxConfig pod, string name, LinuxContainerResources? resources, bool privileged, params string[] command) =>
        RunAsync(podId, pod, name, resources, privileged, [], command);

    public async Task<string> RunAsync(
        string podId, PodSandboxConfig pod, string name, LinuxContainerResources? resources, bool privileged, IReadOnlyList<string> cdiDevices, params string[] command)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = Image },
            Linux = new LinuxContainerConfig
            {
                Resources = resources ?? new LinuxContainerResources(),
                SecurityContext = new LinuxContainerSecurityContext
                {
                    Privileged = privileged,
                    // As kubelet does, a container of a pod with its own user namespace states the pod's namespace options.
                    NamespaceOptions = pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions is null ? null : pod.Linux.SecurityContext.NamespaceOptions.Clone(),
                },
            },
        };
        config.Command.AddRange(command);
        foreach (var device in cdiDevices) config.CDIDevices.Add(new CDIDevice { Name = device });
        var id = (await Vm.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;
        await Vm.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        return id;
    }

    public async Task<string> ExecAsync(string id, params string[] command)
    {
        var request = new ExecSyncRequest { ContainerId = id, Timeout = 60 };
        request.Cmd.AddRange(command);
        var response = await Vm.Runtime.ExecSyncAsync(request);
        Assert.True(response.ExitCode == 0, $"{string.Join(' ', command)} exited {response.ExitCode}: {response.Stderr.ToStringUtf8()}");
        return response.Stdout.ToStringUtf8().Trim();
    }

    /// <summary>The guest's shims and the start time of the container's init (field 22 of its stat): both the same after a restart of berthd means no process was restarted.</summary>
    public async Task<(string Shims, string InitStart)> ProcessesOfAsync(string id) =>
        (await Vm.ShellAsync("pgrep -f 'berth-shim run' | sort"), await ExecAsync(id, "cut", "-d", " ", "-f", "22", "/proc/1/stat"));

    /// <summary>The container's stats once they show CPU used (the collector reads every second).</summary>
    public async Task<ContainerStats> BusyStatsAsync(string id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (true)
        {
            await Task.Delay(1000);
            var stats = (await Vm.Runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = id })).Stats;
            if (stats.Cpu?.UsageCoreNanoSeconds?.Value > 0 || DateTime.UtcNow > deadline) return stats;
        }
    }

    public async Task<ContainerStatus> WaitExitedAsync(string id, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var status = (await Vm.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id })).Status;
            if (status.State == ContainerState.ContainerExited) return status;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"container {id} is still {status.State}");
            await Task.Delay(200);
        }
    }

    /// <summary>
    /// The limits kubelet sets beyond CPU and memory, as a container under the handler reads them in its own cgroup:
    /// memory.swap.max (CRI's swap is memory+swap), hugetlb.2MB.max, memory.high through <c>unified</c> (kubelet's
    /// memory QoS) and pids.max from <c>runtime.pids_limit</c>.
    /// </summary>
    public async Task<string> OtherLimitsAsync(string handler, string? cgroupParent = null)
    {
        var (podId, pod) = await RunPodAsync($"limits-{(handler.Length == 0 ? "runc" : handler)}", handler, cgroupParent);
        try
        {
            var resources = new LinuxContainerResources { MemoryLimitInBytes = 64 << 20, MemorySwapLimitInBytes = 96 << 20 };
            resources.HugepageLimits.Add(new HugepageLimit { PageSize = "2MB", Limit = 4 << 20 });
            resources.Unified.Add("memory.high", (48 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture));
            var id = await RunAsync(podId, pod, "limits", resources, "sleep", "600");
            return await ExecAsync(id, "cat", "/sys/fs/cgroup/memory.swap.max", "/sys/fs/cgroup/hugetlb.2MB.max", "/sys/fs/cgroup/memory.high", "/sys/fs/cgroup/pids.max");
        }
        finally
        {
            await RemovePodAsync(podId);
        }
    }

    /// <summary>The events GetContainerEvents streams for a container that runs `true` in a new pod, until it stopped.</summary>
    public async Task<List<ContainerEventType>> EventsOfAShortContainerAsync(string podName, string? cgroupParent = null)
    {
        using var events = Vm.Runtime.GetContainerEvents(new GetEventsRequest());
        var (podId, pod) = await RunPodAsync(podName, cgroupParent: cgroupParent);
        try
        {
            var id = await RunAsync(podId, pod, "short", null, "true");
            await WaitExitedAsync(id, TimeSpan.FromMinutes(1));
            var seen = new List<ContainerEventType>();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            while (seen.Count < 3 && await events.ResponseStream.MoveNext(timeout.Token))
            {
                if (events.ResponseStream.Current.ContainerId == id) seen.Add(events.ResponseStream.Current.ContainerEventType);
            }
            return seen;
        }
        finally
        {
            await RemovePodAsync(podId);
        }
    }

    public async Task RemovePodAsync(string podId)
    {
        await Vm.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await Vm.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
    }
}

/// <summary>The guest with a CNI bridge network of its own, for pods that need their own network namespace.</summary>
public sealed class NetworkedNodeTestBed : NodeTestBed
{
    protected override string GuestCommands => """
        mkdir -p /etc/cni/net.d
        cat > /etc/cni/net.d/10-node-test.conflist <<'CONF'
        {"cniVersion": "1.0.0", "name": "node-test", "plugins": [{"type": "bridge", "bridge": "berthtest0", "isGateway": true,
          "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/24"}]], "dataDir": "/run/node-test-ipam"}}]}
        CONF
        """;
}

/// <summary>The same guest with systemd as PID 1 and berthd as berth.service.</summary>
public sealed class SystemdNodeTestBed : NodeTestBed
{
    protected override bool Systemd => true;
}

/// <summary>
/// A new node as its operator makes one: systemd as PID 1, hack/package's .deb installed with <c>dpkg -i</c>, and
/// berthd on the packaged config (its CNI bridge network included) with nothing over it but debug logging.
/// </summary>
public sealed class PackagedNodeTestBed : NodeTestBed
{
    private string? _packageDirectory;

    protected override bool Systemd => true;

    protected override string ExtraConfig => "log_level = \"debug\"\n";

    protected override async Task<string?> PackageAsync()
    {
        _packageDirectory = Directory.CreateTempSubdirectory("berth-deb-").FullName;
        return await DebPackage.BuildAsync(_packageDirectory);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_packageDirectory is not null) Directory.Delete(_packageDirectory, recursive: true);
    }
}
