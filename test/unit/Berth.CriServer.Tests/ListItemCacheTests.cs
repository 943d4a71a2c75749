using Berth.CriServer.Services;
using Berth.Runtime.Containers;
using Berth.Sandbox;

namespace Berth.CriServer.Tests;

/// <summary>List items are made once per record version and shared: a changed record (a new one) gets its own.</summary>
public sealed class ListItemCacheTests
{
    private static readonly ContainerRecord Container = new()
    {
        Id = "c1", PodId = "p1", Name = "app", NameKey = "app_p1_0", Image = "busybox", ImageRef = "sha256:1", Bundle = "/run/berth/c1", Directory = "/var/lib/berth/c1",
        State = ContainerState.Created, Labels = { ["app"] = "web" },
    };

    [Fact]
    public void A_container_record_maps_to_one_shared_item_and_its_next_version_to_a_new_one()
    {
        var first = ContainerMapper.ToListItem(Container);
        Assert.Same(first, ContainerMapper.ToListItem(Container));
        Assert.Equal("web", first.Labels["app"]);

        var running = ContainerMapper.ToListItem(Container with { State = ContainerState.Running });
        Assert.NotSame(first, running);
        Assert.Equal(Berth.Cri.V1.ContainerState.ContainerRunning, running.State);
        Assert.Equal(Berth.Cri.V1.ContainerState.ContainerCreated, first.State);
    }

    [Fact]
    public void A_sandbox_record_maps_to_one_shared_item_and_its_next_version_to_a_new_one()
    {
        var record = new SandboxRecord { Id = "p1", Name = "web", Namespace = "default", Uid = "u1", State = SandboxState.Ready, Directory = "/run/berth/p1" };
        var first = SandboxMapper.ToListItem(record);
        Assert.Same(first, SandboxMapper.ToListItem(record));
        var stopped = SandboxMapper.ToListItem(record with { State = SandboxState.NotReady });
        Assert.Equal(Berth.Cri.V1.PodSandboxState.SandboxNotready, stopped.State);
        Assert.Equal(Berth.Cri.V1.PodSandboxState.SandboxReady, first.State);
    }
}
