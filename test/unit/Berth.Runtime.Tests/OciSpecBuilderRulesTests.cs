using Berth.Runtime.Spec;

namespace Berth.Runtime.Tests;

/// <summary>The builder's rules, one at a time: kubelet's command semantics, user resolution, and refusals that name their field.</summary>
public sealed class OciSpecBuilderRulesTests
{
    private static readonly UserDatabase Users = UserDatabase.Parse(
        "root:x:0:0::/root:/bin/sh\nwww:x:1000:1001::/srv:/bin/sh\nbroken line\n# comment\n",
        "root:x:0:\nwww:x:1001:\nstaff:x:50:www\n");

    private static readonly PodSettings Pod = new() { Id = "p", Name = "pod", Namespace = "ns", Uid = "u" };
    private static readonly ImageSettings Image = new() { ImageRef = "sha256:ab", Entrypoint = ["/entry"], Cmd = ["default-arg"] };

    private static OciSpec Build(ContainerRequest request, ImageSettings? image = null, PodSettings? pod = null, NodeSettings? node = null) =>
        OciSpecBuilder.Build("c", request, pod ?? Pod, image ?? Image, node ?? new NodeSettings(), Users);

    private static ContainerRequest Request => new() { Name = "c" };

    [Theory]
    [InlineData(new string[0], new string[0], new[] { "/entry", "default-arg" })]
    [InlineData(new string[0], new[] { "x" }, new[] { "/entry", "x" })]
    [InlineData(new[] { "/bin/cmd" }, new string[0], new[] { "/bin/cmd" })]
    [InlineData(new[] { "/bin/cmd" }, new[] { "y" }, new[] { "/bin/cmd", "y" })]
    public void Command_and_args_follow_kubelet_semantics(string[] command, string[] args, string[] expected) =>
        Assert.Equal(expected, Build(Request with { Command = command, Args = args }).Process.Args);

    [Theory]
    [InlineData(false, "/kubepods/pod1", "/kubepods/pod1/c")]
    [InlineData(true, "kubepods-pod1.slice", "kubepods-pod1.slice:berth:c")]
    [InlineData(true, null, "berth.slice:berth:c")]
    public void The_cgroups_path_follows_the_cgroup_driver(bool systemd, string? parent, string expected) =>
        Assert.Equal(expected, Build(Request, pod: Pod with { CgroupParent = parent }, node: new NodeSettings { SystemdCgroup = systemd }).Linux!.CgroupsPath);

    [Fact]
    public void A_cgroupfs_parent_under_the_systemd_driver_is_refused_by_field()
    {
        var error = Assert.Throws<ContainerSpecException>(() =>
            Build(Request, pod: Pod with { CgroupParent = "/kubepods/pod1" }, node: new NodeSettings { SystemdCgroup = true }));
        Assert.StartsWith("linux.cgroup_parent: '/kubepods/pod1' is no systemd slice", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void No_command_anywhere_is_refused()
    {
        var error = Assert.Throws<ContainerSpecException>(() => Build(Request, Image with { Entrypoint = [], Cmd = [] }));
        Assert.StartsWith("command:", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, 0u, 0u)]
    [InlineData("www", 1000u, 1001u)]
    [InlineData("1000", 1000u, 1001u)]
    [InlineData("4242", 4242u, 0u)]
    [InlineData("www:staff", 1000u, 50u)]
    [InlineData("1000:7", 1000u, 7u)]
    public void The_image_user_resolves_in_the_image_passwd(string? user, uint uid, uint gid)
    {
        var resolved = Build(Request, Image with { User = user }).Process.User;
        Assert.Equal((uid, gid), (resolved.Uid, resolved.Gid));
    }

    [Fact]
    public void Merge_adds_the_groups_that_list_the_user()
    {
        Assert.Equal([1001u, 50u], Build(Request with { Security = new ContainerSecurity { RunAsUser = 1000 } }).Process.User.AdditionalGids);
        Assert.Equal([1001u], Build(Request with { Security = new ContainerSecurity { RunAsUser = 1000, SupplementalGroupsPolicy = SupplementalGroupsPolicy.Strict } }).Process.User.AdditionalGids);
    }

    [Theory]
    [InlineData("nobody", null, "linux.security_context.run_as_username")]
    [InlineData(null, "ghost", "image user 'ghost'")]
    [InlineData(null, "www:ghosts", "no group 'ghosts'")]
    public void Unknown_users_and_groups_are_refused(string? runAsUsername, string? imageUser, string expected)
    {
        var error = Assert.Throws<ContainerSpecException>(() =>
            Build(Request with { Security = new ContainerSecurity { RunAsUsername = runAsUsername } }, Image with { User = imageUser }));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Request_env_replaces_image_env_in_place_and_PATH_has_a_default()
    {
        var env = Build(Request with { Env = [new("B", "request"), new("C", "3")] }, Image with { Env = ["A=1", "B=image"] }).Process.Env;
        Assert.Equal(["A=1", "B=request", "C=3", OciSpecBuilder.DefaultPath], env);
    }

    [Fact]
    public void Drop_ALL_then_add_leaves_only_the_added()
    {
        var caps = Build(Request with { Security = new ContainerSecurity { DropCapabilities = ["ALL"], AddCapabilities = ["NET_BIND_SERVICE"] } }).Process.Capabilities!;
        Assert.Equal(["CAP_NET_BIND_SERVICE"], caps.Bounding);
    }

    [Fact]
    public void Add_ALL_grants_every_capability_but_the_dropped()
    {
        var caps = Build(Request with { Security = new ContainerSecurity { AddCapabilities = ["ALL"], DropCapabilities = ["SYS_ADMIN"] } }).Process.Capabilities!;
        Assert.Equal(40, caps.Bounding.Count);
        Assert.DoesNotContain("CAP_SYS_ADMIN", caps.Bounding);
    }

    [Fact]
    public void The_oom_score_adj_is_raised_to_the_floor_only_when_below_it()
    {
        var node = new NodeSettings { OomScoreAdjFloor = -500 };
        Assert.Equal(-500, Build(Request with { Resources = new ContainerResources { OomScoreAdj = -999 } }, node: node).Process.OomScoreAdj);
        Assert.Equal(1000, Build(Request with { Resources = new ContainerResources { OomScoreAdj = 1000 } }, node: node).Process.OomScoreAdj);
        Assert.Equal(-999, Build(Request with { Resources = new ContainerResources { OomScoreAdj = -999 } }).Process.OomScoreAdj);
    }

    [Fact]
    public void Without_swap_accounting_no_swap_limit_is_written()
    {
        var memory = Build(Request with { Resources = new ContainerResources { MemoryLimitInBytes = 1 << 20, MemorySwapLimitInBytes = 2 << 20 } }).Linux.Resources!.Memory!;
        Assert.Equal((1L << 20, (long?)null), (memory.Limit!.Value, memory.Swap));
    }

    [Fact]
    public void A_requested_mount_replaces_the_default_at_its_destination()
    {
        var spec = Build(Request with { Mounts = [new ContainerMount { ContainerPath = "/dev/shm/", HostPath = "/big-shm" }] },
            pod: Pod with { ShmPath = "/run/shm" });
        Assert.Equal("/big-shm", Assert.Single(spec.Mounts, m => m.Destination == "/dev/shm").Source);
    }

    public static TheoryData<ContainerRequest, PodSettings?, NodeSettings?, string> Refusals => new()
    {
        { Request with { Mounts = [new ContainerMount { ContainerPath = "data", HostPath = "/x" }] }, null, null, "mounts[0].container_path" },
        { Request with { Mounts = [new ContainerMount { ContainerPath = "/data", HostPath = "x" }] }, null, null, "mounts[0].host_path" },
        { Request with { WorkingDir = "relative" }, null, null, "working_dir" },
        { Request with { Env = [new("A=B", "c")] }, null, null, "envs" },
        { Request with { Resources = new ContainerResources { CpuShares = -1 } }, null, null, "linux.resources.cpu_shares" },
        { Request with { Resources = new ContainerResources { CpuQuota = -2 } }, null, null, "linux.resources.cpu_quota" },
        { Request with { Resources = new ContainerResources { MemoryLimitInBytes = -5 } }, null, null, "linux.resources.memory_limit_in_bytes" },
        { Request with { Resources = new ContainerResources { OomScoreAdj = 1001 } }, null, null, "linux.resources.oom_score_adj" },
        { Request with { Resources = new ContainerResources { HugepageLimits = [new("2XB", 1)] } }, null, null, "linux.resources.hugepage_limits" },
        { Request with { Resources = new ContainerResources { Unified = new Dictionary<string, string> { ["memory.high"] = "1" } } }, null, null, "linux.resources.unified" },
        { Request with { Security = new ContainerSecurity { AddCapabilities = ["CAP_FLY"] } }, null, null, "capabilities.add_capabilities" },
        { Request with { Security = new ContainerSecurity { AddAmbientCapabilities = ["NET_ADMIN"] } }, null, null, "capabilities.add_ambient_capabilities" },
        { Request with { Security = new ContainerSecurity { Privileged = true } }, null, null, "linux.security_context.privileged" },
        { Request with { Security = new ContainerSecurity { Pid = ContainerPidMode.Pod } }, null, null, "namespace_options.pid" },
        { Request with { Security = new ContainerSecurity { RunAsUser = -1 } }, null, null, "linux.security_context.run_as_user" },
        { Request with { Devices = [new ContainerDevice { ContainerPath = "/dev/x", HostPath = "/dev/x", Type = 'c', Major = 1, Minor = 3, Permissions = "rwx" }] }, null, null, "devices[0].permissions" },
        { Request with { Security = new ContainerSecurity { Seccomp = SeccompMode.Localhost } }, null, null, "seccomp.localhost_ref" },
        { Request with { Security = new ContainerSecurity { RunAsGroup = 5 } }, null, null, "linux.security_context.run_as_group" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Bad_input_is_refused_with_the_field_named(ContainerRequest request, PodSettings? pod, NodeSettings? node, string field)
    {
        var error = Assert.Throws<ContainerSpecException>(() => Build(request, pod: pod, node: node));
        Assert.Contains(field, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Capabilities_never_exceed_the_nodes_bounding_set()
    {
        // Bit 24 is CAP_SYS_RESOURCE, which this node lacks.
        var node = new NodeSettings { BoundingCapabilities = 0x1fffeffffff };
        var privileged = Build(Request with { Security = new ContainerSecurity { Privileged = true } }, pod: Pod with { Privileged = true }, node: node);
        var all = Build(Request with { Security = new ContainerSecurity { AddCapabilities = ["ALL"] } }, node: node);
        foreach (var spec in new[] { privileged, all })
        {
            Assert.DoesNotContain("CAP_SYS_RESOURCE", spec.Process.Capabilities!.Bounding);
            Assert.Contains("CAP_SYS_ADMIN", spec.Process.Capabilities.Bounding);
        }
    }

    [Fact]
    public void A_recursive_read_only_mount_asks_the_runtime_for_rro()
    {
        var spec = Build(Request with
        {
            Mounts =
            [
                new ContainerMount { ContainerPath = "/rro", HostPath = "/srv/data", Readonly = true, RecursiveReadonly = true },
                new ContainerMount { ContainerPath = "/ro", HostPath = "/srv/data", Readonly = true },
            ],
        });
        Assert.Equal(["rbind", "ro", "rro", "rprivate"], Assert.Single(spec.Mounts, m => m.Destination == "/rro").Options);
        Assert.Equal(["rbind", "ro", "rprivate"], Assert.Single(spec.Mounts, m => m.Destination == "/ro").Options);
    }

    [Theory]
    [InlineData(false, MountPropagation.Private)]
    [InlineData(true, MountPropagation.HostToContainer)]
    [InlineData(true, MountPropagation.Bidirectional)]
    public void A_recursive_read_only_mount_must_be_read_only_and_private(bool readOnly, MountPropagation propagation)
    {
        var mount = new ContainerMount { ContainerPath = "/x", HostPath = "/srv", Readonly = readOnly, RecursiveReadonly = true, Propagation = propagation };
        var error = Assert.Throws<ContainerSpecException>(() => Build(Request with { Mounts = [mount] }));
        Assert.StartsWith("mounts[0].recursive_read_only:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_localhost_apparmor_profile_goes_to_the_process()
    {
        Assert.Equal("my-profile", Build(Request with { Security = new ContainerSecurity { AppArmorProfile = "my-profile" } }).Process.ApparmorProfile);
        Assert.Null(Build(Request).Process.ApparmorProfile);
    }

    [Theory]
    [InlineData("cpu_shares", 1L)]
    [InlineData("cpu_shares", 262145L)]
    [InlineData("cpu_period", 999L)]
    [InlineData("cpu_period", 1_000_001L)]
    [InlineData("cpu_quota", 999L)]
    [InlineData("cpu_quota", long.MaxValue)]
    public void Cpu_values_the_kernel_refuses_are_refused_by_field(string field, long value)
    {
        var resources = field switch
        {
            "cpu_shares" => new ContainerResources { CpuShares = value },
            "cpu_period" => new ContainerResources { CpuPeriod = value },
            _ => new ContainerResources { CpuQuota = value },
        };
        var error = Assert.Throws<ContainerSpecException>(() => Build(Request with { Resources = resources }));
        Assert.StartsWith($"linux.resources.{field}: {value} is outside", error.Message, StringComparison.Ordinal);
        Assert.Throws<ContainerSpecException>(() => OciSpecBuilder.UpdatedResources(resources, new NodeSettings()));
    }

    [Theory]
    [InlineData("a\0b", "is not a list like 0-3,6")]
    [InlineData("../../etc/shadow", "is not a list like 0-3,6")]
    [InlineData("3-1", "is not a list like 0-3,6")]
    [InlineData("0-1,6", "6 is not among the node's online CPUs (0,1)")]
    public void Cpusets_must_be_lists_of_online_cpus(string cpus, string reason)
    {
        var node = new NodeSettings { OnlineCpus = new HashSet<int> { 0, 1 } };
        var error = Assert.Throws<ContainerSpecException>(() => Build(Request with { Resources = new ContainerResources { CpusetCpus = cpus.Replace("\\0", "\0", StringComparison.Ordinal) } }, node: node));
        Assert.StartsWith("linux.resources.cpuset_cpus: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cpusets_of_online_cpus_pass()
    {
        var node = new NodeSettings { OnlineCpus = new HashSet<int> { 0, 1, 2, 3 }, OnlineMems = new HashSet<int> { 0 } };
        var spec = Build(Request with { Resources = new ContainerResources { CpusetCpus = "0-1,3", CpusetMems = "0" } }, node: node);
        Assert.Equal("0-1,3", spec.Linux!.Resources!.Cpu!.Cpus);
    }

    [Fact]
    public void Environment_names_and_values_with_nul_are_refused()
    {
        Assert.Throws<ContainerSpecException>(() => Build(Request with { Env = [new("A\0B", "x")] }));
        Assert.Throws<ContainerSpecException>(() => Build(Request with { Env = [new("A", "x\0y")] }));
    }

    [Theory]
    [InlineData("relative/path")]
    [InlineData("/with\0nul")]
    public void Masked_and_readonly_paths_must_be_absolute_paths(string path)
    {
        path = path.Replace("\\0", "\0", StringComparison.Ordinal);
        var masked = Assert.Throws<ContainerSpecException>(() => Build(Request with { Security = new ContainerSecurity { MaskedPaths = [path] } }));
        Assert.StartsWith("linux.security_context.masked_paths: ", masked.Message, StringComparison.Ordinal);
        var readOnly = Assert.Throws<ContainerSpecException>(() => Build(Request with { Security = new ContainerSecurity { ReadonlyPaths = [path] } }));
        Assert.StartsWith("linux.security_context.readonly_paths: ", readOnly.Message, StringComparison.Ordinal);
    }

    private static readonly PodUserNamespace Userns = new("/run/berth/sandboxes/p/ns/user", new OciIdMapping(0, 100000, 65536), new OciIdMapping(0, 200000, 65536));

    [Fact]
    public void A_pod_user_namespace_is_joined_with_its_maps()
    {
        var linux = Build(Request, pod: Pod with { UserNamespace = Userns }).Linux!;
        Assert.Contains(new OciNamespace("user", Userns.Path), linux.Namespaces);
        Assert.Equal([new OciIdMapping(0, 100000, 65536)], linux.UidMappings!);
        Assert.Equal([new OciIdMapping(0, 200000, 65536)], linux.GidMappings!);
        Assert.Null(Build(Request).Linux!.UidMappings);
        Assert.DoesNotContain(Build(Request).Linux!.Namespaces, n => n.Type == "user");
    }

    [Fact]
    public void A_container_in_a_pod_user_namespace_cannot_be_privileged()
    {
        var error = Assert.Throws<ContainerSpecException>(() => Build(
            Request with { Security = new ContainerSecurity { Privileged = true } }, pod: Pod with { Privileged = true, UserNamespace = Userns }));
        Assert.StartsWith("linux.security_context.privileged", error.Message, StringComparison.Ordinal);
    }
}
