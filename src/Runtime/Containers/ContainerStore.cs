using System.Text.Json;

namespace Berth.Runtime.Containers;

/// <summary>
/// Container records, one JSON file each under the persistent root, written to a temp name, fsynced and renamed,
/// with an in-memory index by ID and by name (the name is reserved per pod and attempt).
/// </summary>
internal sealed class ContainerStore
{
    private readonly string _directory;
    private readonly Dictionary<string, ContainerRecord> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _idByName = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public ContainerStore(string directory)
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

    public IReadOnlyList<ContainerRecord> List()
    {
        lock (_lock) return [.. _byId.Values];
    }

    public ContainerRecord? Get(string id)
    {
        lock (_lock) return _byId.GetValueOrDefault(id);
    }

    /// <summary>The full ID of the one container whose ID starts with <paramref name="prefix"/>, or null.</summary>
    public string? ResolvePrefix(string prefix)
    {
        if (prefix.Length == 0) return null;
        string? match = null;
        lock (_lock)
        {
            foreach (var id in _byId.Keys)
            {
                if (!id.StartsWith(prefix, StringComparison.Ordinal)) continue;
                if (match is not null) return null;
                match = id;
            }
        }
        return match;
    }

    /// <summary>Claims the record's name and stores it; the name of another container of the pod is refused.</summary>
    public void Reserve(ContainerRecord record)
    {
        lock (_lock)
        {
            if (_idByName.TryGetValue(record.NameKey, out var existing))
                throw new ContainerExistsException(
                    $"metadata: a container named {record.Name} (attempt {record.Attempt}) exists already in pod {record.PodId}: {existing}");
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

    public void Update(ContainerRecord record)
    {
        lock (_lock)
        {
            if (!_byId.ContainsKey(record.Id)) return; // removed meanwhile
            _byId[record.Id] = record;
        }
        Write(record);
    }

    public void Delete(ContainerRecord record)
    {
        File.Delete(PathOf(record.Id));
        lock (_lock)
        {
            _byId.Remove(record.Id);
            if (_idByName.GetValueOrDefault(record.NameKey) == record.Id) _idByName.Remove(record.NameKey);
        }
    }

    /// <summary>Records that could not be read at load, moved to <c>quarantine/</c> so that startup goes on; for the log.</summary>
    public List<string> Quarantined { get; } = [];

    private static ContainerRecord? Load(string path)
    {
        try
        {
            var record = JsonSerializer.Deserialize(File.ReadAllBytes(path), ContainerJsonContext.Default.ContainerRecord);
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

    private void Write(ContainerRecord record)
    {
        var path = PathOf(record.Id);
        var temp = path + ".tmp";
        try
        {
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                file.Write(JsonSerializer.SerializeToUtf8Bytes(record, ContainerJsonContext.Default.ContainerRecord));
                file.Flush(flushToDisk: true);
            }
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        File.Move(temp, path, overwrite: true);
    }
}
