using System.Text.Json;

namespace Berth.Sandbox;

/// <summary>
/// Sandbox records, one JSON file each under the persistent root, written to a temp name, fsynced and renamed,
/// with an in-memory index by ID and by name.
/// </summary>
internal sealed class SandboxStore
{
    private readonly string _directory;
    private readonly Dictionary<string, SandboxRecord> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _idByName = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public SandboxStore(string directory)
    {
        _directory = directory;
        Directory.CreateDirectory(directory);
        foreach (var stale in Directory.EnumerateFiles(directory, "*.tmp")) File.Delete(stale);
        foreach (var path in Directory.EnumerateFiles(directory, "*.json"))
        {
            if (Load(path) is not { } record)
            {
                Quarantined.Add(Quarantine(path));
                continue;
            }
            _byId[record.Id] = record;
            _idByName[record.NameKey] = record.Id;
        }
    }

    public IReadOnlyList<SandboxRecord> List()
    {
        lock (_lock) return [.. _byId.Values];
    }

    public SandboxRecord? Get(string id)
    {
        lock (_lock) return _byId.GetValueOrDefault(id);
    }

    /// <summary>Claims the record's name and stores it; the name of another live sandbox is refused.</summary>
    public void Reserve(SandboxRecord record)
    {
        lock (_lock)
        {
            if (_idByName.TryGetValue(record.NameKey, out var existing))
                throw new SandboxExistsException(
                    $"metadata: a sandbox named {record.Name} in {record.Namespace} (uid {record.Uid}, attempt {record.Attempt}) exists already: {existing}");
            _idByName[record.NameKey] = record.Id;
            _byId[record.Id] = record;
        }
        try
        {
            Write(record);
        }
        catch
        {
            // Not stored (a full disk): the name is free again and nothing is left to recover.
            lock (_lock)
            {
                _byId.Remove(record.Id);
                _idByName.Remove(record.NameKey);
            }
            throw;
        }
    }

    public void Update(SandboxRecord record)
    {
        lock (_lock) _byId[record.Id] = record;
        Write(record);
    }

    public void Delete(SandboxRecord record)
    {
        File.Delete(PathOf(record.Id));
        SyncDirectory();
        lock (_lock)
        {
            _byId.Remove(record.Id);
            if (_idByName.GetValueOrDefault(record.NameKey) == record.Id) _idByName.Remove(record.NameKey);
        }
    }

    /// <summary>Records that could not be read at load, moved to <c>quarantine/</c> so that startup goes on; for the log.</summary>
    public List<string> Quarantined { get; } = [];

    private static SandboxRecord? Load(string path)
    {
        try
        {
            var record = JsonSerializer.Deserialize(File.ReadAllBytes(path), SandboxJsonContext.Default.SandboxRecord);
            return record is not null && Path.GetFileName(path) == record.Id + ".json" ? record : null;
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            return null;
        }
    }

    private string Quarantine(string path)
    {
        var quarantine = Path.Combine(_directory, "quarantine");
        Directory.CreateDirectory(quarantine);
        var target = Path.Combine(quarantine, $"{Path.GetFileName(path)}.{Guid.NewGuid():N}");
        File.Move(path, target);
        return target;
    }

    private string PathOf(string id) => Path.Combine(_directory, id + ".json");

    private void Write(SandboxRecord record)
    {
        var path = PathOf(record.Id);
        var temp = path + ".tmp";
        try
        {
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                file.Write(JsonSerializer.SerializeToUtf8Bytes(record, SandboxJsonContext.Default.SandboxRecord));
                file.Flush(flushToDisk: true);
            }
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        File.Move(temp, path, overwrite: true);
        SyncDirectory();
    }

    private void SyncDirectory()
    {
        var fd = Native.Linux.Open(_directory, Native.Linux.ORdOnly | Native.Linux.OCloExec);
        if (fd < 0) return;
        _ = Native.Linux.Fsync(fd);
        _ = Native.Linux.Close(fd);
    }
}
