using System.Text;
using System.Text.Json.Nodes;
using Berth.Cri.V1;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// One berthd, a registry holding a busybox image built from busybox-static, and a CNI network, shared by the
/// container tests of a class. Each test makes its own pods and removes them.
/// </summary>
public sealed class ContainerTestBed : IAsyncLifetime
{
    /// <summary>Applets the tests call by name, as links to busybox.</summary>
    private static readonly string[] Applets =
    [
        "echo", "sleep", "cat", "id", "ps", "grep", "head", "tail", "ls", "wc", "true", "false", "kill", "nc", "hostname",
        "touch", "ln", "xargs", "mv", "printf", "dd", "env", "pwd", "stat", "mkdir", "mount", "tr", "yes", "rm", "seq", "trap", "test", "ip", "stty", "tty", "sha256sum", "httpd", "wget",
    ];

    private RegistryServer? _registry;
    private BerthDaemon? _daemon;
    private TestNetwork? _network;

    public BerthDaemon Daemon => _daemon ?? throw new InvalidOperationException("not started");
    public RegistryServer Registry => _registry ?? throw new InvalidOperationException("not started");
    public TestNetwork Network => _network ?? throw new InvalidOperationException("not started");

    /// <summary>busybox with the applet links, Cmd ["/bin/sh"].</summary>
    public string Image { get; private set; } = "";

    /// <summary>The same with an Entrypoint, a Cmd, a WorkingDir, an Env and a volume, to test how they merge.</summary>
    public string ConfiguredImage { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync(RegistryMode.Plain);
        // Short-lived streaming URLs, so a test can watch one expire; stats collected every second; Stream* RPCs
        // in chunks of three items, so a handful of pods or containers already spans several messages.
        _daemon = await BerthDaemon.StartAsync(new DaemonOptions
        {
            // Nothing may leave this machine: a short name that a test sends by mistake goes to a closed local port.
            ExtraConfig = $"[cdi]\nspec_dirs = [\"{CdiSpecDirectory}\"]\n"
                          + "[streaming]\ntoken_lifetime = \"5s\"\n[stats]\ncollect_period = \"1s\"\n"
                          + "[images.registries.\"docker.io\"]\nserver = \"http://127.0.0.1:9\"\n",
            StreamChunkSize = 3,
            EnableMetrics = true,
        });
        _network = TestNetwork.Create(_daemon);
        using var pusher = new RegistryPusher(_registry);
        var applets = TestLayers.Tar(w =>
        {
            TestLayers.Dir(w, "bin/");
            foreach (var applet in Applets) TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, $"bin/{applet}", "busybox");
            TestLayers.Dir(w, "data/");
            TestLayers.Dir(w, "proc/");
            TestLayers.Dir(w, "sys/");
            TestLayers.Dir(w, "dev/");
        });
        await pusher.PushAsync("busybox", new TestImageBuilder().Layer(TestLayers.Base()).Layer(applets).Build(), "test");
        // What the image has at its volume path, which the volume starts with.
        var volumeContent = TestLayers.Tar(w =>
        {
            TestLayers.Dir(w, "vol/", mode: 0x1E8 /* 0750 */, uid: 1000, gid: 1000);
            TestLayers.File(w, "vol/seed.txt", "seeded\n"u8.ToArray(), 0x1A0 /* 0640 */, uid: 1000, gid: 1000,
                xattrs: new Dictionary<string, string> { ["SCHILY.xattr.user.berth"] = "volume-xattr" });
            TestLayers.Dir(w, "vol/sub/");
            TestLayers.Link(w, System.Formats.Tar.TarEntryType.SymbolicLink, "vol/sub/link", "../seed.txt");
        });
        await pusher.PushAsync("configured", new TestImageBuilder().Layer(TestLayers.Base()).Layer(applets).Layer(volumeContent).RunConfig(c =>
        {
            c["Entrypoint"] = new JsonArray("/bin/echo", "entry");
            c["Cmd"] = new JsonArray("from-cmd");
            c["WorkingDir"] = "/home/berth";
            c["Env"] = new JsonArray("PATH=/bin", "FROM_IMAGE=image", "OVERRIDDEN=image");
            c["Volumes"] = new JsonObject { ["/vol"] = new JsonObject() };
        }).Build(), "test");
        Image = $"{_registry.Host}/busybox:test";
        ConfiguredImage = $"{_registry.Host}/configured:test";
        await _daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = Image } });
        await _daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = ConfiguredImage } });
    }

    public async Task DisposeAsync()
    {
        if (_daemon is not null) await _daemon.DisposeAsync();
        _network?.Dispose();
        if (_registry is not null) await _registry.DisposeAsync();
        Directory.Delete(CdiSpecDirectory, recursive: true);
    }

    /// <summary>The daemon's one CDI spec directory (<c>cdi.spec_dirs</c>), empty until a test writes specs there.</summary>
    public string CdiSpecDirectory { get; } = Directory.CreateTempSubdirectory("berth-e2e-cdi-").FullName;

    public string LogDirectory(string pod) => Path.Combine(Daemon.Directory, "logs", pod);

    public PodSandboxConfig Pod(string name, bool hostNetwork = false, bool privileged = false, NamespaceMode pid = NamespaceMode.Container)
    {
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = "default", Uid = Guid.NewGuid().ToString() },
            Hostname = name,
            LogDirectory = LogDirectory(name),
            Linux = new LinuxPodSandboxConfig
            {
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    Privileged = privileged,
                    NamespaceOptions = new NamespaceOption { Network = hostNetwork ? NamespaceMode.Node : NamespaceMode.Pod, Pid = pid },
                },
            },
        };
        return config;
    }

    public ContainerConfig Container(string name, params string[] command)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = Image },
            LogPath = $"{name}.log",
            Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext(), Resources = new LinuxContainerResources() },
        };
        config.Command.AddRange(command);
        return config;
    }

    public async Task<string> RunPodAsync(PodSandboxConfig config) =>
        (await Daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config })).PodSandboxId;

    public async Task<string> CreateAsync(string podId, PodSandboxConfig pod, ContainerConfig config) =>
        (await Daemon.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod })).ContainerId;

    public async Task<string> RunAsync(string podId, PodSandboxConfig pod, ContainerConfig config)
    {
        var id = await CreateAsync(podId, pod, config);
        await Daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
        return id;
    }

    public async Task<ContainerStatus> StatusAsync(string id, bool verbose = false) =>
        (await Daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = verbose })).Status;

    public async Task<ContainerStatus> WaitExitedAsync(string id, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var status = await StatusAsync(id);
            if (status.State == ContainerState.ContainerExited) return status;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"container {id} is still {status.State}");
            await Task.Delay(50);
        }
    }

    public async Task<(int ExitCode, string Stdout, string Stderr)> ExecAsync(string id, params string[] command)
    {
        var request = new ExecSyncRequest { ContainerId = id, Timeout = 10 };
        request.Cmd.AddRange(command);
        var response = await Daemon.Runtime.ExecSyncAsync(request);
        return (response.ExitCode, response.Stdout.ToStringUtf8(), response.Stderr.ToStringUtf8());
    }

    /// <summary>Waits until the log file holds <paramref name="text"/>; returns the whole file.</summary>
    public static async Task<string> WaitForLogAsync(string path, string text, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var content = File.Exists(path) ? Encoding.UTF8.GetString(await File.ReadAllBytesAsync(path)) : "";
            if (content.Contains(text, StringComparison.Ordinal)) return content;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{path} never held '{text}'; it holds:\n{content}");
            await Task.Delay(50);
        }
    }

    public async Task RemovePodAsync(string podId)
    {
        await Daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
        await Daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
    }
}
