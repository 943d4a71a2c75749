using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Logging;

namespace Berth.Records;

/// <summary>
/// Crash-safe records, one JSON file each (<c>&lt;id&gt;.json</c>): written to a temp name, fsynced, renamed, and the
/// directory fsynced, so a record is either its old or its new self after a crash. An in-memory index by ID and by
/// name (a name is reserved by one record at a time), and unique-prefix lookup as containerd's truncindex does.
/// A file that cannot be read at load is moved to <c>quarantine/</c>, never fatal. Containers and sandboxes both
/// keep their records here (the source is compiled into both components).
/// </summary>
internal sealed class RecordStore<T>
    where T : class
{
    private readonly string _directory;
    private readonly JsonTypeInfo<T> _json;
    private readonly Func<T, string> _idOf;
    private readonly Func<T, string> _nameOf;
    private readonly Dictionary<string, T> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _idByName = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    // kind: what a record is ("container", "sandbox"), for the log line of a quarantined file.
    public RecordStore(string directory, JsonTypeInfo<T> json, Func<T, string> idOf, Func<T, string> nameOf, string kind, ILogger logger)
    {
        _directory = directory;
        _json = json;
        _idOf = idOf;
        _nameOf = nameOf;
        Directory.CreateDirectory(directory);
        foreach (var stale in Directory.EnumerateFiles(directory, "*.tmp")) File.Delete(stale);
        foreach (var path in Directory.EnumerateFiles(directory, "*.json"))
        {
            if (Load(path) is not { } record)
            {
                RecordLog.Quarantined(logger, kind, Quarantine(path));
                continue;
            }
            _byId[idOf(record)] = record;
            _idByName[nameOf(record)] = idOf(record);
        }
    }

    public IReadOnlyList<T> List()
    {
        lock (_lock) return [.. _byId.Values];
    }

    public T? Get(string id)
    {
        lock (_lock) return _byId.GetValueOrDefault(id);
    }

    /// <summary>The full ID of the one record whose ID starts with <paramref name="prefix"/>; null for none, several, or "".</summary>
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

    /// <summary>
    /// Claims the record's name and stores it. A name another record holds is refused with <paramref name="taken"/>'s
    /// exception (given the holder's ID); a record that cannot be written (a full disk) frees the name again.
    /// </summary>
    public void Reserve(T record, Func<string, Exception> taken)
    {
        var id = _idOf(record);
        var name = _nameOf(record);
        lock (_lock)
        {
            if (_idByName.TryGetValue(name, out var holder)) throw taken(holder);
            _idByName[name] = id;
            _byId[id] = record;
        }
        try
        {
            Write(record);
        }
        catch
        {
            lock (_lock)
            {
                _byId.Remove(id);
                _idByName.Remove(name);
            }
            throw;
        }
    }

    /// <summary>Stores a new version; a record deleted meanwhile stays deleted.</summary>
    public void Update(T record)
    {
        lock (_lock)
        {
            if (!_byId.ContainsKey(_idOf(record))) return;
            _byId[_idOf(record)] = record;
        }
        Write(record);
    }

    public void Delete(T record)
    {
        var id = _idOf(record);
        File.Delete(PathOf(id));
        Berth.Native.Descriptors.SyncDirectory(_directory);
        lock (_lock)
        {
            _byId.Remove(id);
            if (_idByName.GetValueOrDefault(_nameOf(record)) == id) _idByName.Remove(_nameOf(record));
        }
    }

    private T? Load(string path)
    {
        try
        {
            var record = JsonSerializer.Deserialize(File.ReadAllBytes(path), _json);
            return record is not null && Path.GetFileName(path) == _idOf(record) + ".json" ? record : null;
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

    private void Write(T record)
    {
        var path = PathOf(_idOf(record));
        var temp = path + ".tmp";
        try
        {
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                file.Write(JsonSerializer.SerializeToUtf8Bytes(record, _json));
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        Berth.Native.Descriptors.SyncDirectory(_directory);
    }
}

/// <summary>The store's log lines (a generic type cannot hold them).</summary>
internal static partial class RecordLog
{
    [LoggerMessage(Level = LogLevel.Error, Message = "a {Kind} record could not be read and was moved to {Path}; that {Kind} is not listed")]
    public static partial void Quarantined(ILogger logger, string kind, string path);
}
