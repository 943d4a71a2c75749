using Berth.Runtime.Cgroups;

namespace Berth.Runtime.Tests;

public sealed class CgroupPathsTests
{
    [Theory]
    [InlineData("c1", "", false, "/berth/c1")]
    [InlineData("c1", "/kubepods/burstable/pod1/", false, "/kubepods/burstable/pod1/c1")]
    [InlineData("c1", "kubepods", false, "/kubepods/c1")]
    [InlineData("c1", "", true, "berth.slice:berth:c1")]
    [InlineData("c1", "kubepods-burstable-pod1.slice", true, "kubepods-burstable-pod1.slice:berth:c1")]
    public void A_container_gets_the_path_its_driver_takes(string id, string parent, bool systemd, string expected) =>
        Assert.Equal(expected, CgroupPaths.ForContainer(id, parent, systemd));

    [Theory]
    [InlineData("kubepods-burstable-pod1.slice:berth:c1", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/berth-c1.scope")]
    [InlineData("berth.slice:berth:c1", "/berth.slice/berth-c1.scope")]
    [InlineData(":berth:c1", "/berth.slice/berth-c1.scope")]
    [InlineData("-.slice:berth:c1", "/berth-c1.scope")]
    [InlineData("kubepods-besteffort.slice", "/kubepods.slice/kubepods-besteffort.slice")]
    [InlineData("/kubepods/burstable/pod1/c1", "/kubepods/burstable/pod1/c1")]
    [InlineData("kubepods/pod1/", "/kubepods/pod1")]
    public void Every_form_resolves_to_its_directory_below_the_root(string path, string expected) =>
        Assert.Equal(expected, CgroupPaths.Resolve(path));

    [Theory]
    [InlineData("kubepods-burstable-pod1.slice", true)]
    [InlineData("-.slice", true)]
    [InlineData("kubepods.slice", true)]
    [InlineData("/kubepods.slice", false)]
    [InlineData("kubepods--x.slice", false)]
    [InlineData("kubepods", false)]
    public void Slices_are_told_from_paths(string name, bool slice) => Assert.Equal(slice, CgroupPaths.IsSlice(name));
}
