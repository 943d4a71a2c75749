using Microsoft.Extensions.Logging;

namespace Berth.Runtime.Cdi;

/// <summary>A device CDI knows: its qualified name and the spec file that defines it.</summary>
public sealed record CdiKnownDevice(string Name, string SpecFile);

/// <summary>What the registry holds now: its directories, the devices it can resolve, and what it could not take.</summary>
public sealed record CdiRegistryState(
    IReadOnlyList<string> SpecDirs, IReadOnlyList<CdiKnownDevice> Devices, IReadOnlyDictionary<string, string> Errors, IReadOnlyDictionary<string, IReadOnlyList<string>> Conflicts);

/// <summary>
/// The CDI specs of the configured directories (<c>cdi.spec_dirs</c>), kept current by an inotify watch: a spec
/// added, changed or removed is seen by the next resolution, which first takes in whatever the kernel has queued.
/// Every <c>.json</c> and <c>.yaml</c> file of a directory is read; one that does not load is logged with its path and
/// reason and skipped. A device of a later directory replaces one of an earlier; two specs of one directory that
/// define the same device are a conflict, and the device is unresolvable until one goes, as CDI's reference cache has it.
/// </summary>
public sealed partial class CdiRegistry : IDisposable
{
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly CdiSpecWatch _watch;
    private Dictionary<string, (CdiSpec Spec, CdiDeviceDocument Device)> _devices = new(StringComparer.Ordinal);
    private Dictionary<string, List<string>> _conflicts = new(StringComparer.Ordinal);
    private Dictionary<string, string> _errors = new(StringComparer.Ordinal);
    private long _refusedUnknown, _refusedHost;

    internal CdiRegistry(IReadOnlyList<string> specDirs, Berth.Native.FileChangeWatcher watcher, ILogger logger)
    {
        SpecDirs = [.. specDirs.Select(Path.GetFullPath)];
        _logger = logger;
        _watch = new CdiSpecWatch(SpecDirs, watcher, RefreshFromWatch);
        lock (_lock) Refresh();
    }

    public IReadOnlyList<string> SpecDirs { get; }

    /// <summary>Requests refused because a device was unknown, in conflict or malformed.</summary>
    public long RefusedUnresolvable => Interlocked.Read(ref _refusedUnknown);

    /// <summary>Requests refused because the node could not give a device (its host node missing, say).</summary>
    public long RefusedByHost => Interlocked.Read(ref _refusedHost);

    /// <summary>
    /// The edits that <paramref name="devices"/> (fully qualified names, in order, duplicates dropped) make; a
    /// <see cref="CdiDeviceException"/> names the first device that cannot be given and why.
    /// </summary>
    public CdiInjection Resolve(IReadOnlyList<string> devices)
    {
        if (devices.Count == 0) return CdiInjection.None;
        try
        {
            List<(string, CdiSpec, CdiDeviceDocument)> resolved = [];
            lock (_lock)
            {
                if (_watch.TakePending()) Refresh();
                foreach (var name in devices.Distinct(StringComparer.Ordinal))
                {
                    if (CdiNames.ParseQualified(name, out var error) is null) throw new CdiDeviceException($"CDI device '{name}': {error}", requestError: true);
                    if (_devices.TryGetValue(name, out var found)) resolved.Add((name, found.Spec, found.Device));
                    else throw new CdiDeviceException(Unresolvable(name), requestError: true);
                }
            }
            return CdiEditsMerger.Merge(resolved);
        }
        catch (CdiDeviceException e)
        {
            Interlocked.Increment(ref e.RequestError ? ref _refusedUnknown : ref _refusedHost);
            throw;
        }
    }

    /// <summary>Why a name resolves to nothing: a conflict, or no spec defining it (with the specs of that kind that failed to load).</summary>
    private string Unresolvable(string name)
    {
        if (_conflicts.TryGetValue(name, out var files))
            return $"CDI device {name} is defined by both {string.Join(" and ", files)}, specs of the same directory: it cannot be resolved until one goes";
        var kind = name[..name.IndexOf('=', StringComparison.Ordinal)];
        var known = _devices.Keys.Where(k => k.StartsWith(kind + "=", StringComparison.Ordinal)).Order(StringComparer.Ordinal).Take(10).ToList();
        var message = $"CDI device {name} is unknown: no spec in {string.Join(", ", SpecDirs)} defines it"
                      + (known.Count > 0 ? $" (kind {kind} has {string.Join(", ", known)})" : $" (no spec defines kind {kind})");
        return _errors.Count > 0 ? $"{message}; spec files that did not load: {string.Join("; ", _errors.Take(3).Select(e => $"{e.Key}: {e.Value}"))}" : message;
    }

    public CdiRegistryState State()
    {
        lock (_lock)
        {
            if (_watch.TakePending()) Refresh();
            return new CdiRegistryState(
                SpecDirs,
                [.. _devices.OrderBy(d => d.Key, StringComparer.Ordinal).Select(d => new CdiKnownDevice(d.Key, d.Value.Spec.Path))],
                new Dictionary<string, string>(_errors, StringComparer.Ordinal),
                _conflicts.ToDictionary(c => c.Key, c => (IReadOnlyList<string>)c.Value, StringComparer.Ordinal));
        }
    }

    private void RefreshFromWatch()
    {
        lock (_lock)
        {
            if (_watch.TakePending()) Refresh();
        }
    }

    /// <summary>Reads every spec file again. Called with the lock held.</summary>
    private void Refresh()
    {
        var devices = new Dictionary<string, (CdiSpec Spec, CdiDeviceDocument Device)>(StringComparer.Ordinal);
        var conflicts = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var errors = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var priority = 0; priority < SpecDirs.Count; priority++)
        {
            foreach (var path in SpecFiles(SpecDirs[priority]))
            {
                CdiSpec spec;
                try
                {
                    spec = CdiSpec.Load(path, priority);
                }
                catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
                {
                    errors[path] = e.Message;
                    if (_errors.GetValueOrDefault(path) != e.Message) LogSpecRefused(_logger, path, e.Message);
                    continue;
                }
                foreach (var (name, device) in spec.Devices)
                {
                    var qualified = CdiNames.Qualified(spec.Vendor, spec.Class, name);
                    if (devices.TryGetValue(qualified, out var other) && other.Spec.Priority == priority)
                    {
                        if (!conflicts.TryGetValue(qualified, out var files)) conflicts[qualified] = files = [other.Spec.Path];
                        files.Add(spec.Path);
                        continue;
                    }
                    devices[qualified] = (spec, device);
                }
            }
        }
        foreach (var (name, files) in conflicts)
        {
            // Unresolvable, even where a later directory defines it too, as in the reference cache.
            devices.Remove(name);
            if (!(_conflicts.TryGetValue(name, out var before) && before.SequenceEqual(files))) LogConflict(_logger, name, string.Join(", ", files));
        }
        _devices = devices;
        _conflicts = conflicts;
        _errors = errors;
    }

    /// <summary>The directory's .json and .yaml files, in name order, not recursing; a directory that is not there has none.</summary>
    private static List<string> SpecFiles(string directory)
    {
        // Looked at first: a directory that is not there is the common case (/var/run/cdi without a DRA driver), and an
        // exception thrown at each start or refresh costs berthd memory for nothing.
        if (!Directory.Exists(directory)) return [];
        try
        {
            return Directory.EnumerateFiles(directory)
                .Where(f => f.EndsWith(".json", StringComparison.Ordinal) || f.EndsWith(".yaml", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is DirectoryNotFoundException or IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    public void Dispose() => _watch.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "CDI spec {Path} is skipped: {Reason}")]
    private static partial void LogSpecRefused(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "CDI device {Name} is defined by {Files} in one directory: it cannot be resolved until one goes")]
    private static partial void LogConflict(ILogger logger, string name, string files);
}
