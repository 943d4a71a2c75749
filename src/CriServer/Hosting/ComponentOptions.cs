using Berth.CriServer.Configuration;
using Berth.Cni;
using Berth.ImageStore;
using Berth.Runtime;
using Berth.Runtime.Containers;
using Berth.Runtime.Spec;
using Berth.Sandbox;

namespace Berth.CriServer.Hosting;

/// <summary>Maps berthd's config onto each component's own options, so components never see the config file.</summary>
internal static class ComponentOptions
{
    public static ImageStoreOptions ImageStore(BerthConfig config)
    {
        var platform = config.Images.Platform.Split('/');
        return new ImageStoreOptions
        {
            Root = config.Root,
            Os = platform[0],
            Architecture = platform[1],
            Variant = platform.Length > 2 ? platform[2] : null,
            MaxConcurrentDownloads = config.Images.MaxConcurrentDownloads,
            PullProgressTimeout = config.Images.PullProgressTimeout,
            Registries = config.Images.Registries.Concat(config.Images.HostFiles)
                .Where(pair => pair.Key != HostsDirectory.DefaultHost)
                .ToDictionary(pair => pair.Key, pair => Registry(pair.Value), StringComparer.Ordinal),
            DefaultRegistry = config.Images.HostFiles.TryGetValue(HostsDirectory.DefaultHost, out var fallback) ? Registry(fallback) : null,
        };
    }

    private static RegistryHostOptions Registry(RegistryConfig registry) => new()
    {
        Mirrors = registry.Mirrors,
        Server = registry.Server,
        Insecure = registry.Insecure,
        CaFile = registry.CaFile,
        SkipVerify = registry.SkipVerify,
    };

    public static CniOptions Cni(BerthConfig config) => new()
    {
        ConfDirs = config.Cni.ConfDirs,
        BinDirs = config.Cni.BinDirs,
        CacheDir = Path.Combine(config.Root, "cni", "cache"),
    };

    public static Berth.Nri.Adaptation.NriOptions Nri(BerthConfig config) => new()
    {
        SocketPath = config.Nri.DisableConnections ? "" : config.Nri.SocketPath,
        PluginPath = config.Nri.PluginPath,
        PluginConfigPath = config.Nri.PluginConfigPath,
        PluginLogDirectory = Path.Combine(config.State, "nri"),
        RegistrationTimeout = config.Nri.PluginRegistrationTimeout,
        RequestTimeout = config.Nri.PluginRequestTimeout,
        RequiredPlugins = config.Nri.RequiredPlugins,
        RuntimeName = BuildInfo.RuntimeName,
        RuntimeVersion = BuildInfo.Version,
    };

    public static SandboxOptions Sandbox(BerthConfig config) => new()
    {
        RecordDirectory = Path.Combine(config.Root, "sandboxes"),
        StateDirectory = Path.Combine(config.State, "sandboxes"),
        // "" is the default handler, as kubelet sends it for pods without a RuntimeClass.
        RuntimeHandlers = new HashSet<string>(config.Runtime.Handlers.Keys.Append(""), StringComparer.Ordinal),
        ShimBinary = config.Runtime.ShimBinary,
    };

    public static ContainerOptions Containers(BerthConfig config, bool idmappedMounts)
    {
        var handlers = config.Runtime.Handlers.ToDictionary(h => h.Key, h => new RuntimeHandlerSettings(h.Value.Binary), StringComparer.Ordinal);
        // "" is what kubelet sends for pods without a RuntimeClass.
        handlers[""] = handlers[config.Runtime.DefaultHandler];
        return new ContainerOptions
        {
            DataDirectory = Path.Combine(config.Root, "containers"),
            StateDirectory = Path.Combine(config.State, "containers"),
            BundleDirectory = Path.Combine(config.State, "c"),
            ShimBinary = config.Runtime.ShimBinary,
            Handlers = handlers,
            CdiSpecDirs = config.Cdi.SpecDirs,
            ArchiveUnpacker = new ImageStoreUnpacker(),
            Node = new NodeSettings
            {
                CgroupV2 = NodeProbe.CgroupV2,
                SystemdCgroup = config.Runtime.CgroupDriver is { } driver ? driver == "systemd" : NodeProbe.SystemdRunning && NodeProbe.CgroupV2,
                SwapAccounting = NodeProbe.SwapAccounting,
                PidsLimit = config.Runtime.PidsLimit,
                OomScoreAdjFloor = config.Runtime.RestrictOomScoreAdj ? OomScoreAdjustment.ReadOwn() : null,
                HostDevices = NodeProbe.HostDevices(),
                BoundingCapabilities = NodeProbe.BoundingCapabilities(),
                MountSetattr = NodeProbe.MountSetattr,
                IdmappedMounts = idmappedMounts,
                OnlineCpus = NodeProbe.OnlineList("/sys/devices/system/cpu/online"),
                OnlineMems = NodeProbe.OnlineList("/sys/devices/system/node/online"),
            },
        };
    }
}
