using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;
using Grpc.Core;

namespace Berth.E2E.Tests;

/// <summary>
/// Pods that share one PID namespace: berth-shim plays their infra process (PID 1), with no image. Containers
/// do not exist yet, so processes are put into the namespace with nsenter.
/// </summary>
public sealed class SharedPidNamespaceTests
{
    private static PodSandboxConfig SharedPidPod(string name) => new()
    {
        Metadata = new PodSandboxMetadata { Name = name, Namespace = "default", Uid = Guid.NewGuid().ToString() },
        Hostname = name,
        Linux = new LinuxPodSandboxConfig
        {
            SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Pid = NamespaceMode.Pod } },
        },
    };

    private static int[] InfraOf(string sandboxId) => ProcessesMatching($"berth-shim pause --sandbox {sandboxId}");

    private static int[] ProcessesMatching(string pattern)
    {
        var (code, output) = Host.Run("pgrep", "-f", pattern);
        return code == 0 ? [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)] : [];
    }

    private static int? ParentOf(int pid)
    {
        try
        {
            return int.Parse(StatusField(pid, "PPid"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // gone meanwhile
        }
    }

    private static string StatusField(int pid, string field) =>
        File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith(field + ":", StringComparison.Ordinal))[(field.Length + 1)..].Trim();

    private static string Inode(string path) => Host.Run("stat", "-L", "-c", "%i", path).Output.Trim();

    /// <summary>Starts `sleep seconds` in the pod's PID namespace and lets its parent exit, so that it is an orphan there.</summary>
    private static int StartOrphan(Dictionary<string, string> namespaces, int seconds)
    {
        var run = Host.Run("nsenter", $"--pid={namespaces["pid"]}", "--", "/bin/busybox", "sh", "-c",
            $"/bin/busybox sleep {seconds} </dev/null >/dev/null 2>&1 &");
        Assert.True(run.ExitCode == 0, run.Output);
        return Assert.Single(ProcessesMatching($"^/bin/busybox sleep {seconds}$"));
    }

    private static async Task WaitGoneAsync(int pid, string what)
    {
        for (var i = 0; i < 500 && File.Exists($"/proc/{pid}/stat"); i++) await Task.Delay(10);
        Assert.False(File.Exists($"/proc/{pid}/stat"), $"{what} ({pid}) is still there: {(File.Exists($"/proc/{pid}/stat") ? File.ReadAllText($"/proc/{pid}/stat") : "")}");
    }

    [Fact]
    public async Task The_infra_process_is_PID_1_of_the_pod_reaps_orphans_and_dies_with_the_pod()
    {
        await using var daemon = await BerthDaemon.StartAsync();
        using var network = TestNetwork.Create(daemon);

        var id = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = SharedPidPod("shared") })).PodSandboxId;

        var status = (await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id })).Status;
        Assert.Equal(NamespaceMode.Pod, status.Linux.Namespaces.Options.Pid);
        var namespaces = await daemon.NamespacesOfAsync(id);
        var infra = Assert.Single(InfraOf(id));
        var verbose = await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = true });
        using (var info = JsonDocument.Parse(verbose.Info["info"])) Assert.Equal(infra, info.RootElement.GetProperty("pid").GetInt32());
        Assert.EndsWith("\t1", StatusField(infra, "NSpid"), StringComparison.Ordinal);
        Assert.Equal(Inode(namespaces["pid"]), Inode($"/proc/{infra}/ns/pid"));
        Assert.Equal(Inode(namespaces["network"]), Inode($"/proc/{infra}/ns/net"));
        Assert.Equal(Inode(namespaces["ipc"]), Inode($"/proc/{infra}/ns/ipc"));
        Assert.Equal(infra.ToString(System.Globalization.CultureInfo.InvariantCulture), Host.Run("ps", "-o", "sid=", "-p", $"{infra}").Output.Trim());
        Assert.InRange(long.Parse(StatusField(infra, "VmRSS").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture), 1, 16 * 1024);

        // An orphan in the pod's PID namespace is the infra's child, and once it dies the infra reaps it.
        var orphan = StartOrphan(namespaces, 3071);
        Assert.Equal($"{infra}", StatusField(orphan, "PPid"));
        Host.Run("kill", "-9", $"{orphan}");
        await WaitGoneAsync(orphan, "a dead orphan the infra should have reaped");

        var survivor = StartOrphan(namespaces, 3072);
        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
        Assert.Empty(InfraOf(id));
        await WaitGoneAsync(survivor, "a process of the stopped pod");
        await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id });
        await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
        Assert.All(namespaces.Values, path => Assert.False(File.Exists(path), $"{path} outlived the pod"));
    }

    [Fact]
    public async Task The_infra_outlives_a_berthd_crash_and_its_death_makes_the_pod_NotReady()
    {
        var directory = Directory.CreateTempSubdirectory("berth-e2e-").FullName;
        TestNetwork? network = null;
        try
        {
            string id;
            await using (var first = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory }))
            {
                network = TestNetwork.Create(first);
                id = (await first.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = SharedPidPod("lasting") })).PodSandboxId;
                first.Signal(Tmds.Linux.LibC.SIGKILL);
                await first.WaitForExitAsync(TimeSpan.FromSeconds(20));
            }
            var infra = Assert.Single(InfraOf(id));

            await using var second = await BerthDaemon.StartAsync(new DaemonOptions { Directory = directory });
            var status = (await second.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id })).Status;
            Assert.Equal(PodSandboxState.SandboxReady, status.State);
            Assert.Equal([infra], InfraOf(id));

            Host.Run("kill", "-9", $"{infra}");
            await WaitGoneAsync(infra, "the killed infra");
            status = (await second.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id })).Status;
            Assert.Equal(PodSandboxState.SandboxNotready, status.State);
            var listed = (await second.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items.Single(p => p.Id == id);
            Assert.Equal(PodSandboxState.SandboxNotready, listed.State);

            await second.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id });
            Assert.Empty(network.Leases());
        }
        finally
        {
            network?.Dispose();
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_failed_RunPodSandbox_kills_the_infra_it_started()
    {
        using var plugins = new FakePlugins();
        plugins.FailingAdd("berth-fail", "refused by the test");
        await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions { CniBinDirs = ["/usr/lib/cni", plugins.Directory] });
        using var network = TestNetwork.Create(daemon, """{"type":"berth-fail"}""");

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = SharedPidPod("doomed") }));

        Assert.Contains("CNI ADD", error.Status.Detail, StringComparison.Ordinal);
        // Only this daemon's infra processes (its children): other tests run pods at the same time.
        Assert.DoesNotContain(ProcessesMatching("berth-shim pause --sandbox"), p => ParentOf(p) == daemon.Pid);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(daemon.StatePath, "sandboxes")));
    }
}
