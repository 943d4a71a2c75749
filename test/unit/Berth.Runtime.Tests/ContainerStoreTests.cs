using Berth.Runtime.Containers;

namespace Berth.Runtime.Tests;

public sealed class ContainerStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("berth-store-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static ContainerRecord Record(string id) => new()
    {
        Id = id, PodId = "pod", Name = id, NameKey = $"pod/{id}/0", Image = "sha256:0", ImageRef = "sha256:0", Bundle = "/b", Directory = "/d",
    };

    [Theory]
    [InlineData("abc1", "abc1000")]
    [InlineData("d", "def0000")]
    [InlineData("abc1000", "abc1000")]
    [InlineData("abc", null)] // two containers start so
    [InlineData("", null)]
    [InlineData("x", null)]
    public void A_prefix_names_the_one_container_it_starts(string prefix, string? expected)
    {
        var store = new ContainerStore(_directory);
        foreach (var id in new[] { "abc1000", "abc2000", "def0000" }) store.Reserve(Record(id));
        Assert.Equal(expected, store.ResolvePrefix(prefix));
    }
}
