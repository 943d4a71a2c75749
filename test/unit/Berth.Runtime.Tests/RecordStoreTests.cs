using Berth.Records;
using Berth.Runtime.Containers;

namespace Berth.Runtime.Tests;

public sealed class RecordStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("berth-store-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static ContainerRecord Record(string id, string? name = null) => new()
    {
        Id = id, PodId = "pod", Name = id, NameKey = name ?? $"pod/{id}/0", Image = "sha256:0", ImageRef = "sha256:0", Bundle = "/b", Directory = "/d",
    };

    private readonly ListLogger _log = new();

    private RecordStore<ContainerRecord> Open() => new(_directory, ContainerJsonContext.Default.ContainerRecord, r => r.Id, r => r.NameKey, "container", _log);

    /// <summary>Keeps what was logged, for the quarantine's error lines.</summary>
    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }

    private static InvalidOperationException Taken(string holder) => new($"taken by {holder}");

    [Theory]
    [InlineData("abc1", "abc1000")]
    [InlineData("d", "def0000")]
    [InlineData("abc1000", "abc1000")]
    [InlineData("abc", null)] // two containers start so
    [InlineData("", null)]
    [InlineData("x", null)]
    public void A_prefix_names_the_one_record_it_starts(string prefix, string? expected)
    {
        var store = Open();
        foreach (var id in new[] { "abc1000", "abc2000", "def0000" }) store.Reserve(Record(id), Taken);
        Assert.Equal(expected, store.ResolvePrefix(prefix));
    }

    [Fact]
    public void A_name_is_reserved_by_one_record_until_it_is_deleted()
    {
        var store = Open();
        var first = Record("a1", name: "same");
        store.Reserve(first, Taken);
        Assert.Equal("taken by a1", Assert.Throws<InvalidOperationException>(() => store.Reserve(Record("b2", name: "same"), Taken)).Message);
        store.Delete(first);
        store.Reserve(Record("b2", name: "same"), Taken);
        Assert.Equal(["b2"], store.List().Select(r => r.Id));
    }

    [Fact]
    public void Records_survive_a_reload_and_an_update_after_a_delete_stays_deleted()
    {
        var store = Open();
        var record = Record("a1");
        store.Reserve(record, Taken);
        store.Update(record with { Attempt = 3 });
        store.Delete(record);
        store.Update(record with { Attempt = 4 });
        store.Reserve(Record("b2"), Taken);

        var reloaded = Open();
        Assert.Equal(["b2"], reloaded.List().Select(r => r.Id));
        Assert.Empty(Directory.EnumerateFiles(_directory, "*.tmp"));
    }

    [Fact]
    public void Unreadable_records_are_quarantined_not_fatal()
    {
        Open().Reserve(Record("good"), Taken);
        File.WriteAllText(Path.Combine(_directory, "broken.json"), "{\"id\":");
        File.WriteAllText(Path.Combine(_directory, "misnamed.json"), File.ReadAllText(Path.Combine(_directory, "good.json")));
        File.WriteAllText(Path.Combine(_directory, "left.json.tmp"), "half");

        var store = Open();

        Assert.Equal(["good"], store.List().Select(r => r.Id));
        Assert.Equal(2, _log.Lines.Count(l => l.StartsWith("a container record could not be read and was moved to", StringComparison.Ordinal)));
        Assert.Equal(2, Directory.EnumerateFiles(Path.Combine(_directory, "quarantine")).Count());
        Assert.False(File.Exists(Path.Combine(_directory, "left.json.tmp")));
    }

    [Fact]
    public void A_record_that_cannot_be_written_frees_its_name()
    {
        var store = Open();
        var record = Record(new string('x', 300)); // a file name over NAME_MAX: the write fails
        Assert.ThrowsAny<IOException>(() => store.Reserve(record, Taken));
        Assert.Empty(store.List());
        store.Reserve(Record("ok", name: record.NameKey), Taken);
    }
}
