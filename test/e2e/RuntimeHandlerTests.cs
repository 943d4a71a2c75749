using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>A pod's runtime handler picks the OCI runtime binary and state root its containers use.</summary>
public sealed class RuntimeHandlerTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>
{
    [Fact]
    public async Task A_second_handler_runs_its_containers_with_its_own_binary_and_root()
    {
        // A wrapper around runc that leaves a mark, so the test sees which binary berthd and the shim ran.
        var directory = Directory.CreateTempSubdirectory("be-").FullName;
        var marks = Path.Combine(directory, "marks");
        var wrapper = Path.Combine(directory, "second-runtime");
        await File.WriteAllTextAsync(wrapper, $"#!/bin/sh\necho \"$@\" >> {marks}\nexec /usr/sbin/runc \"$@\"\n");
        File.SetUnixFileMode(wrapper, (UnixFileMode)0x1ED);
        try
        {
            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions
            {
                ExtraConfig = $"[runtime.handlers.runc]\nbinary = \"runc\"\n[runtime.handlers.second]\nbinary = \"{wrapper}\"\n",
            });
            await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Image } });
            var pod = bed.Pod("second-handler", hostNetwork: true);
            pod.LogDirectory = Path.Combine(directory, "logs");
            var podId = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod, RuntimeHandler = "second" })).PodSandboxId;
            var id = (await daemon.Runtime.CreateContainerAsync(new CreateContainerRequest
            {
                PodSandboxId = podId, Config = bed.Container("c", "sleep", "60"), SandboxConfig = pod,
            })).ContainerId;
            await daemon.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id });
            var exec = new ExecSyncRequest { ContainerId = id, Timeout = 10 };
            exec.Cmd.AddRange(["echo", "ok"]);
            Assert.Equal("ok\n", (await daemon.Runtime.ExecSyncAsync(exec)).Stdout.ToStringUtf8());

            var root = Path.Combine(daemon.StatePath, "containers", "runtime", "second");
            Assert.True(Directory.Exists(Path.Combine(root, id)), $"no runtime state for {id} under {root}");
            var calls = await File.ReadAllLinesAsync(marks);
            foreach (var verb in new[] { "create", "start", "exec" })
                Assert.Contains(calls, c => c.StartsWith($"--root {root} ", StringComparison.Ordinal) && c.Contains($" {verb} ", StringComparison.Ordinal));

            await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
            Assert.Contains(await File.ReadAllLinesAsync(marks), c => c.Contains(" delete ", StringComparison.Ordinal));
            Assert.False(Directory.Exists(Path.Combine(root, id)));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_handler_whose_runtime_cannot_say_it_supports_rro_is_reported_without_it_and_refuses_such_mounts()
    {
        // runc as an older runtime would be: no "features" command.
        var directory = Directory.CreateTempSubdirectory("be-").FullName;
        var wrapper = Path.Combine(directory, "old-runtime");
        await File.WriteAllTextAsync(wrapper, "#!/bin/sh\n[ \"$1\" = features ] && { echo 'unknown command \"features\"' >&2; exit 1; }\nexec /usr/sbin/runc \"$@\"\n");
        File.SetUnixFileMode(wrapper, (UnixFileMode)0x1ED);
        try
        {
            await using var daemon = await BerthDaemon.StartAsync(new DaemonOptions
            {
                ExtraConfig = $"[runtime.handlers.runc]\nbinary = \"runc\"\n[runtime.handlers.old]\nbinary = \"{wrapper}\"\n",
            });
            var handlers = (await daemon.Runtime.StatusAsync(new StatusRequest())).RuntimeHandlers;
            Assert.True(handlers.Single(h => h.Name == "runc").Features.RecursiveReadOnlyMounts);
            Assert.False(handlers.Single(h => h.Name == "old").Features.RecursiveReadOnlyMounts);
            // Nor can Berth tell that it joins user namespaces.
            Assert.True(handlers.Single(h => h.Name == "runc").Features.UserNamespaces);
            Assert.False(handlers.Single(h => h.Name == "old").Features.UserNamespaces);

            await daemon.Images.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = bed.Image } });
            var pod = bed.Pod("old-handler", hostNetwork: true);
            pod.LogDirectory = Path.Combine(directory, "logs");
            var podId = (await daemon.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = pod, RuntimeHandler = "old" })).PodSandboxId;
            var config = bed.Container("c", "sleep", "60");
            config.Mounts.Add(new Mount { ContainerPath = "/data", HostPath = directory, Readonly = true, RecursiveReadOnly = true });
            var error = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
                await daemon.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = pod }));
            Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, error.StatusCode);
            Assert.Contains("mounts[0].recursive_read_only: runtime handler 'old'", error.Status.Detail, StringComparison.Ordinal);
            Assert.Empty((await daemon.Runtime.ListContainersAsync(new ListContainersRequest())).Containers);

            await daemon.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = podId });
            await daemon.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = podId });
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
