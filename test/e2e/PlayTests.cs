using System.Text.Json;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>
/// <c>berth play</c>: Pod manifests run through a real berthd the way the kubelet would turn them into CRI requests,
/// and <c>berth play --down</c> leaves nothing behind. The checks read the OCI spec berthd made from those requests.
/// </summary>
public sealed class PlayTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    private string Manifest(string name, int hostPort) => """
        apiVersion: v1
        kind: Pod
        metadata:
          name: __NAME__
          namespace: team
          labels: {app: web}
        spec:
          hostname: web-host
          terminationGracePeriodSeconds: 2
          securityContext:
            supplementalGroups: [3000]
            fsGroup: 2000
          initContainers:
          - name: seed
            image: __IMAGE__
            command: [/bin/sh, -c, "echo seeded-by-init > /shared/seed && echo init done"]
            volumeMounts: [{name: shared, mountPath: /shared}]
          containers:
          - name: app
            image: __IMAGE__
            command: [sleep, "3600"]
            ports: [{containerPort: 8080, hostPort: __HOSTPORT__}]
            env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: GREETING, value: "hello $(POD_NAME)"}
            - {name: MEM_LIMIT_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
            resources:
              requests: {cpu: 250m, memory: 32Mi}
              limits: {cpu: 500m, memory: 64Mi}
            securityContext:
              runAsUser: 1000
              runAsGroup: 1000
              allowPrivilegeEscalation: false
              readOnlyRootFilesystem: true
              capabilities: {add: [NET_ADMIN], drop: [MKNOD]}
            volumeMounts:
            - {name: shared, mountPath: /shared}
            - {name: scratch, mountPath: /scratch}
          - name: sidecar
            image: __IMAGE__
            command: [sleep, "3600"]
            volumeMounts: [{name: shared, mountPath: /data, readOnly: true}]
          volumes:
          - {name: shared, emptyDir: {}}
          - {name: scratch, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
        """.Replace("__NAME__", name, StringComparison.Ordinal).Replace("__IMAGE__", bed.Image, StringComparison.Ordinal).Replace("__HOSTPORT__", hostPort.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    [Fact]
    public async Task A_two_container_pod_with_an_init_container_runs_as_the_kubelet_would_and_down_leaves_nothing()
    {
        var name = $"play-{Guid.NewGuid():N}"[..16];
        var state = Path.Combine(bed.Daemon.Directory, "play");
        var file = Path.Combine(bed.Daemon.Directory, $"{name}.yaml");
        await File.WriteAllTextAsync(file, Manifest(name, 18080));
        var (code, output) = await Play("--detach", "--state-dir", state, file);
        string? uid = null;
        try
        {
            Assert.True(code == 0, output);
            var sandbox = Assert.Single((await bed.Daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items, p => p.Metadata.Name == name);
            uid = sandbox.Metadata.Uid;
            Assert.Equal("team", sandbox.Metadata.Namespace);
            Assert.Equal("web", sandbox.Labels["app"]);
            Assert.Equal(name, sandbox.Labels["io.kubernetes.pod.name"]);
            var sandboxInfo = await SandboxInfoAsync(sandbox.Id);
            Assert.Equal("web-host", sandboxInfo.GetProperty("hostname").GetString());
            Assert.Equal($"/berth-play/burstable/pod{uid}", sandboxInfo.GetProperty("cgroupParent").GetString());
            var port = Assert.Single(sandboxInfo.GetProperty("portMappings").EnumerateArray());
            Assert.Equal(8080, port.GetProperty("containerPort").GetInt32());
            Assert.Equal(18080, port.GetProperty("hostPort").GetInt32());

            var containers = (await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = sandbox.Id } })).Containers;
            var seed = Assert.Single(containers, c => c.Metadata.Name == "seed");
            Assert.Equal(ContainerState.ContainerExited, seed.State);
            var app = Assert.Single(containers, c => c.Metadata.Name == "app");
            Assert.Equal(ContainerState.ContainerRunning, app.State);
            Assert.Equal(ContainerState.ContainerRunning, Assert.Single(containers, c => c.Metadata.Name == "sidecar").State);

            // kubelet's conversion: 250m requested is 256 shares, 500m limit a 50 ms quota per 100 ms, 64Mi in bytes.
            var spec = await RuntimeSpecAsync(app.Id);
            var resources = spec.GetProperty("linux").GetProperty("resources");
            Assert.Equal(256, resources.GetProperty("cpu").GetProperty("shares").GetInt64());
            Assert.Equal(50000, resources.GetProperty("cpu").GetProperty("quota").GetInt64());
            Assert.Equal(100000, resources.GetProperty("cpu").GetProperty("period").GetInt64());
            Assert.Equal(64L << 20, resources.GetProperty("memory").GetProperty("limit").GetInt64());
            Assert.StartsWith($"/berth-play/burstable/pod{uid}/", spec.GetProperty("linux").GetProperty("cgroupsPath").GetString(), StringComparison.Ordinal);
            var process = spec.GetProperty("process");
            Assert.Equal(1000, process.GetProperty("user").GetProperty("uid").GetInt32());
            Assert.Equal(1000, process.GetProperty("user").GetProperty("gid").GetInt32());
            var groups = process.GetProperty("user").GetProperty("additionalGids").EnumerateArray().Select(g => g.GetInt32()).ToList();
            Assert.Contains(3000, groups);
            Assert.Contains(2000, groups);
            Assert.True(process.GetProperty("noNewPrivileges").GetBoolean());
            Assert.True(spec.GetProperty("root").GetProperty("readonly").GetBoolean());
            var capabilities = process.GetProperty("capabilities").GetProperty("effective").EnumerateArray().Select(c => c.GetString()).ToList();
            Assert.Contains("CAP_NET_ADMIN", capabilities);
            Assert.DoesNotContain("CAP_MKNOD", capabilities);
            var env = process.GetProperty("env").EnumerateArray().Select(e => e.GetString()).ToList();
            Assert.Contains($"GREETING=hello {name}", env);
            Assert.Contains("MEM_LIMIT_MI=64", env);

            // The init container's output is in the emptyDir both app containers mount, and in its log.
            Assert.Equal((0, "seeded-by-init"), Trimmed(await Cli("exec", app.Id, "--", "cat", "/shared/seed")));
            Assert.Equal((0, "seeded-by-init"), Trimmed(await Cli("exec", "sidecar", "--", "cat", "/data/seed")));
            Assert.Contains("/scratch tmpfs", (await Cli("exec", app.Id, "--", "cat", "/proc/mounts")).Output, StringComparison.Ordinal);
            Assert.Equal((3, ""), Trimmed(await Cli("exec", app.Id, "--", "sh", "-c", "exit 3")));
            Assert.Equal((0, "init done"), Trimmed(await Cli("logs", seed.Id)));
            var ps = await Cli("ps", "--pod", sandbox.Id);
            Assert.Contains("app", ps.Output, StringComparison.Ordinal);
            Assert.Contains("sidecar", ps.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("seed", ps.Output, StringComparison.Ordinal);

            // A second play of a running pod is refused, and changes nothing.
            var again = await Play("--detach", "--state-dir", state, file);
            Assert.Equal(1, again.ExitCode);
            Assert.Contains($"pod team/{name} is already running", again.Output, StringComparison.Ordinal);
        }
        finally
        {
            var down = await Play("--down", "--state-dir", state, file);
            Assert.True(down.ExitCode == 0, down.Output);
        }
        Assert.DoesNotContain((await bed.Daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items, p => p.Metadata.Name == name);
        Assert.False(Directory.Exists(Path.Combine(state, "pods", uid!)), "the pod's volumes are left");
        Assert.False(Directory.Exists($"/var/log/pods/team_{name}_{uid}"), "the pod's log directory is left");
        Assert.DoesNotContain(File.ReadAllText("/proc/self/mountinfo").Split('\n'), l => l.Contains(uid!, StringComparison.Ordinal));
        foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
            Assert.False(Directory.Exists(Path.Combine(hierarchy, "berth-play")), $"{hierarchy}/berth-play is left");
        Directory.Delete(state, recursive: true);
        File.Delete(file);
    }

    [Fact]
    public async Task HostUsers_false_an_image_volume_hostPath_types_and_a_sidecar_init_container_run_as_the_kubelet_would()
    {
        var name = $"userns-{Guid.NewGuid():N}"[..16];
        var state = Path.Combine(bed.Daemon.Directory, "play-userns");
        var host = Path.Combine(bed.Daemon.Directory, $"{name}-host");
        Directory.CreateDirectory(Path.Combine(host, "existing"));
        await File.WriteAllTextAsync(Path.Combine(host, "existing", "note"), "from the node");
        var manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: __NAME__}
            spec:
              hostUsers: false
              terminationGracePeriodSeconds: 2
              initContainers:
              - name: setup
                image: __IMAGE__
                command: [/bin/sh, -c, "echo setup done"]
              - name: logger
                image: __IMAGE__
                restartPolicy: Always
                command: [sleep, "3600"]
              containers:
              - name: app
                image: __IMAGE__
                command: [sleep, "3600"]
                volumeMounts:
                - {name: tools, mountPath: /tools}
                - {name: made, mountPath: /made}
                - {name: file, mountPath: /etc/node-file}
                - {name: existing, mountPath: /existing, readOnly: true}
              volumes:
              - {name: tools, image: {reference: __IMAGE__, pullPolicy: IfNotPresent}}
              - {name: made, hostPath: {path: __HOST__/made, type: DirectoryOrCreate}}
              - {name: file, hostPath: {path: __HOST__/file, type: FileOrCreate}}
              - {name: existing, hostPath: {path: __HOST__/existing, type: Directory}}
            """.Replace("__NAME__", name, StringComparison.Ordinal).Replace("__IMAGE__", bed.Image, StringComparison.Ordinal).Replace("__HOST__", host, StringComparison.Ordinal);
        try
        {
            var (code, output) = await BerthCli.RunAsync(bed.Daemon, ["play", "--detach", "--state-dir", state, "-"], stdin: manifest);
            Assert.True(code == 0, output);
            var sandbox = Assert.Single((await bed.Daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items, p => p.Metadata.Name == name);
            var containers = (await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest { Filter = new ContainerFilter { PodSandboxId = sandbox.Id } })).Containers;
            Assert.Equal(ContainerState.ContainerExited, Assert.Single(containers, c => c.Metadata.Name == "setup").State);
            // A sidecar (an init container with restartPolicy Always) starts in its turn and keeps running beside the app.
            var logger = Assert.Single(containers, c => c.Metadata.Name == "logger");
            var app = Assert.Single(containers, c => c.Metadata.Name == "app");
            Assert.Equal(ContainerState.ContainerRunning, logger.State);
            Assert.Equal(ContainerState.ContainerRunning, app.State);
            Assert.True(logger.CreatedAt < app.CreatedAt, "the sidecar was made after the app container");

            // hostUsers: false is a pod user namespace of a 65536-ID block above the node's own IDs, for every container.
            var uidMap = (await Cli("exec", app.Id, "--", "cat", "/proc/self/uid_map")).Output.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("0", uidMap[0]);
            Assert.True(long.Parse(uidMap[1], System.Globalization.CultureInfo.InvariantCulture) >= 65536, $"uid_map {string.Join(' ', uidMap)} maps to the node's own IDs");
            Assert.Equal("65536", uidMap[2]);
            Assert.Equal(string.Join(' ', uidMap), string.Join(' ', (await Cli("exec", logger.Id, "--", "cat", "/proc/self/uid_map")).Output.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries)));

            // The image volume is the image's root, read-only; the hostPaths were made by their types, shown as root inside.
            Assert.Equal((0, "ok"), Trimmed(await Cli("exec", app.Id, "--", "sh", "-c", "test -x /tools/bin/busybox && ! touch /tools/x 2>/dev/null && echo ok")));
            Assert.True(Directory.Exists(Path.Combine(host, "made")), "DirectoryOrCreate made no directory");
            Assert.True(File.Exists(Path.Combine(host, "file")), "FileOrCreate made no file");
            Assert.Equal((0, "from the node"), Trimmed(await Cli("exec", app.Id, "--", "cat", "/existing/note")));
            Assert.Equal((0, "0"), Trimmed(await Cli("exec", app.Id, "--", "stat", "-c", "%u", "/existing/note")));
            Assert.Equal((0, "written"), Trimmed(await Cli("exec", app.Id, "--", "sh", "-c", "echo written > /made/out && cat /made/out")));
            Assert.Equal("written\n", await File.ReadAllTextAsync(Path.Combine(host, "made", "out")));
        }
        finally
        {
            var down = await BerthCli.RunAsync(bed.Daemon, ["play", "--down", "--state-dir", state, "-"], stdin: manifest);
            Assert.True(down.ExitCode == 0, down.Output);
        }
        Assert.DoesNotContain((await bed.Daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items, p => p.Metadata.Name == name);
        // --down never removes what a hostPath names.
        Assert.True(File.Exists(Path.Combine(host, "made", "out")), "--down removed a hostPath's content");
        Assert.DoesNotContain(File.ReadAllText("/proc/self/mountinfo").Split('\n'), l => l.Contains(name, StringComparison.Ordinal));
        Directory.Delete(host, recursive: true);
        // A pod without emptyDirs has nothing under the state directory.
        Assert.False(Directory.Exists(Path.Combine(state, "pods")), "the pod's volume directory is left");
    }

    [Theory]
    [InlineData("kind: Pod", "kind: Deployment", "kind 'Deployment' is not a Pod")]
    [InlineData("    command: [sleep, \"1\"]", "    livenessProbe: {exec: {command: [\"true\"]}}", "spec.containers[0].livenessProbe: probes and lifecycle hooks are not run by berth play")]
    [InlineData("    command: [sleep, \"1\"]", "    envFrom: [{configMapRef: {name: settings}}]", "spec.containers[0].envFrom: needs an API server")]
    [InlineData("    command: [sleep, \"1\"]", "    comand: [sleep, \"1\"]", "spec.containers[0].comand: unknown field")]
    [InlineData("    command: [sleep, \"1\"]", "    env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: s, key: k}}}]", "spec.containers[0].env[0].valueFrom.secretKeyRef: not supported by berth play")]
    [InlineData("  volumes: []", "  volumes: [{name: cfg, configMap: {name: settings}}]", "spec.volumes[0].configMap: needs an API server")]
    [InlineData("  volumes: []", "  volumes: [{name: node, hostPath: {path: /nonexistent/berth-play, type: Directory}}]", "spec.volumes[0].hostPath: /nonexistent/berth-play is not a directory (type Directory)")]
    [InlineData("  volumes: []", "  volumes: [{name: node, hostPath: {path: /etc/hostname, type: Socket}}]", "spec.volumes[0].hostPath: /etc/hostname is not a socket (type Socket)")]
    [InlineData("  volumes: []", "  nodeSelector: {disk: ssd}", "spec.nodeSelector: scheduling does not apply")]
    [InlineData("    command: [sleep, \"1\"]", "    resources: {limits: {nvidia.com/gpu: 1}}", "spec.containers[0].resources.limits.nvidia.com/gpu: berth play honours cpu, memory and hugepages-* only")]
    [InlineData("    command: [sleep, \"1\"]", "    image: nothing.invalid/never:1\n    imagePullPolicy: Never", "image nothing.invalid/never:1 is not on the node and the pull policy is Never")]
    public async Task A_field_berth_play_cannot_honour_is_refused_by_name_and_nothing_is_made(string replace, string with, string message)
    {
        var name = $"refused-{Guid.NewGuid():N}"[..16];
        var manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: __NAME__}
            spec:
              containers:
              - name: main
                image: __IMAGE__
                command: [sleep, "1"]
              volumes: []
            """.Replace("__IMAGE__", bed.Image, StringComparison.Ordinal).Replace("__NAME__", name, StringComparison.Ordinal).Replace(replace, with, StringComparison.Ordinal);
        if (with.Contains("image:", StringComparison.Ordinal)) manifest = manifest.Replace($"    image: {bed.Image}\n", "", StringComparison.Ordinal);
        var (code, output) = await BerthCli.RunAsync(bed.Daemon, ["play", "--detach", "--state-dir", Path.Combine(bed.Daemon.Directory, "play-refused"), "-"], stdin: manifest);
        Assert.Equal(1, code);
        Assert.Contains(message, output, StringComparison.Ordinal);
        Assert.DoesNotContain((await bed.Daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items, p => p.Metadata.Name == name);
        Assert.False(Directory.Exists(Path.Combine(bed.Daemon.Directory, "play-refused", "pods")), "a refused pod made volumes");
    }

    [Fact]
    public async Task RestartPolicy_OnFailure_restarts_a_failed_container_while_play_watches_and_play_ends_when_it_succeeds()
    {
        var name = $"restart-{Guid.NewGuid():N}"[..16];
        var state = Path.Combine(bed.Daemon.Directory, "play-restart");
        var manifest = """
            apiVersion: v1
            kind: Pod
            metadata: {name: __NAME__}
            spec:
              restartPolicy: OnFailure
              containers:
              - name: flaky
                image: __IMAGE__
                command: [/bin/sh, -c, "if [ -f /data/ran ]; then echo second; exit 0; fi; touch /data/ran; echo first; exit 3"]
                volumeMounts: [{name: data, mountPath: /data}]
              volumes: [{name: data, emptyDir: {}}]
            """.Replace("__IMAGE__", bed.Image, StringComparison.Ordinal).Replace("__NAME__", name, StringComparison.Ordinal);
        try
        {
            var (code, output) = await BerthCli.RunAsync(bed.Daemon, ["play", "--state-dir", state, "-"], stdin: manifest, timeout: TimeSpan.FromSeconds(60));
            Assert.True(code == 0, output);
            Assert.Contains("flaky exited with 3, restarting in 10 s", output, StringComparison.Ordinal);
            Assert.Contains("flaky exited with 0", output, StringComparison.Ordinal);
            var containers = (await bed.Daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers.Where(c => c.Labels["io.kubernetes.pod.name"] == name).ToList();
            // The kubelet's attempt numbering, and the one dead attempt it keeps for logs --previous.
            Assert.Equal([0u, 1u], containers.Select(c => c.Metadata.Attempt).Order());
            Assert.All(containers, c => Assert.Equal(ContainerState.ContainerExited, c.State));
        }
        finally
        {
            var down = await BerthCli.RunAsync(bed.Daemon, ["play", "--down", "--state-dir", state, "-"], stdin: manifest);
            Assert.True(down.ExitCode == 0, down.Output);
        }
        Assert.DoesNotContain((await bed.Daemon.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest())).Items, p => p.Metadata.Name == name);
        foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
            Assert.False(Directory.Exists(Path.Combine(hierarchy, "berth-play")), $"{hierarchy}/berth-play is left");
        Directory.Delete(state, recursive: true);
    }

    private Task<(int ExitCode, string Output)> Play(params string[] args) => BerthCli.RunAsync(bed.Daemon, ["play", .. args]);

    private Task<(int ExitCode, string Output)> Cli(params string[] args) => BerthCli.RunAsync(bed.Daemon, args);

    private static (int, string) Trimmed((int ExitCode, string Output) result) => (result.ExitCode, result.Output.Trim());

    private async Task<JsonElement> SandboxInfoAsync(string id)
    {
        var status = await bed.Daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = true });
        return JsonDocument.Parse(status.Info["info"]).RootElement.Clone();
    }

    private async Task<JsonElement> RuntimeSpecAsync(string id)
    {
        var status = await bed.Daemon.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = true });
        return JsonDocument.Parse(status.Info["info"]).RootElement.GetProperty("runtimeSpec").Clone();
    }
}
