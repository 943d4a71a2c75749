using System.Text.Json;
using CliWrap;
using CliWrap.Buffered;

namespace Berth.Runtime.Containers;

/// <summary>
/// One OCI runtime binary (runc, crun) and its state root, driven through its command line. Creation is the
/// shim's (it must own the container's stdio); berthd runs start, kill, delete, update and exec itself.
/// </summary>
internal sealed class OciRuntime(string binary, string root, bool systemdCgroup = false)
{
    private Task<OciRuntimeFeatures>? _features;

    public string Binary { get; } = binary;
    public string Root { get; } = root;

    /// <summary>The systemd cgroup driver: runc and crun take <c>--systemd-cgroup</c> before every command.</summary>
    public bool SystemdCgroup { get; } = systemdCgroup;

    /// <summary>
    /// What the binary can do, from its <c>features</c> command (runc 1.1 and later), asked once. A binary without that
    /// command is taken to offer none of the optional features.
    /// </summary>
    public Task<OciRuntimeFeatures> FeaturesAsync() => _features ??= ReadFeaturesAsync();

    private async Task<OciRuntimeFeatures> ReadFeaturesAsync()
    {
        try
        {
            // Not the caller's token: the answer is shared by every later caller.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var result = await Cli.Wrap(Binary).WithArguments(["features"]).WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(timeout.Token);
            return result.ExitCode == 0 ? OciRuntimeFeatures.Parse(result.StandardOutput) : OciRuntimeFeatures.None;
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or System.ComponentModel.Win32Exception or JsonException)
        {
            // A binary that timed out or could not start may answer later: ask again next time instead of keeping "none".
            _features = null;
            return OciRuntimeFeatures.None;
        }
    }

    public async Task StartAsync(string id, CancellationToken cancellationToken)
    {
        using var span = Tracing.Source.StartActivity("runtime.start");
        await RunAsync(["start", id], cancellationToken);
    }

    private Task<string?>? _checkpointCommand;

    /// <summary>Null when the binary has a checkpoint command (crun built without CRIU has none); otherwise what it said.</summary>
    public Task<string?> CheckpointCommandMissingAsync() => _checkpointCommand ??= AskCheckpointAsync();

    private async Task<string?> AskCheckpointAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var result = await Cli.Wrap(Binary).WithArguments(["checkpoint", "--help"]).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(timeout.Token);
        return result.ExitCode == 0 ? null : LastLine(result.StandardError + result.StandardOutput);
    }

    /// <summary>
    /// CRIU dumps the container's processes into <paramref name="imagePath"/> and leaves them running; its log goes to
    /// <paramref name="workPath"/>/dump.log, whose errors a failure carries.
    /// </summary>
    public async Task CheckpointAsync(string id, string imagePath, string workPath, CancellationToken cancellationToken)
    {
        var result = await Command(["checkpoint", "--image-path", imagePath, "--work-path", workPath, "--leave-running", id]).ExecuteBufferedAsync(cancellationToken);
        if (result.ExitCode != 0)
            throw new ContainerPreconditionException($"{Binary} checkpoint {id}: {LastLine(result.StandardError)}{CriuErrors(Path.Combine(workPath, "dump.log"))}");
    }

    /// <summary>The last errors CRIU logged, to say why a dump or restore failed (runc says only that CRIU did).</summary>
    public static string CriuErrors(string log)
    {
        try
        {
            var errors = File.ReadLines(log).Where(l => l.Contains("Error (", StringComparison.Ordinal)).TakeLast(3).Select(l => l.Trim()).ToList();
            return errors.Count == 0 ? "" : $"; CRIU: {string.Join("; ", errors)}";
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>Sends a signal; with <paramref name="all"/> to every process of the container's cgroup.</summary>
    public async Task<bool> KillAsync(string id, string signal, bool all, CancellationToken cancellationToken)
    {
        var result = await Command(all ? ["kill", "--all", id, signal] : ["kill", id, signal]).ExecuteBufferedAsync(cancellationToken);
        // "container not running" or "does not exist" mean there is nothing left to signal.
        return result.ExitCode == 0;
    }

    /// <summary>Removes the runtime's state and the cgroup, killing what is left; a missing container is fine.</summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        using var span = Tracing.Source.StartActivity("runtime.delete");
        var result = await Command(["delete", "--force", id]).ExecuteBufferedAsync(cancellationToken);
        if (result.ExitCode != 0 && !result.StandardError.Contains("does not exist", StringComparison.Ordinal))
            throw new ContainerRuntimeException($"{Binary} delete {id}: {LastLine(result.StandardError)}");
    }

    /// <summary>
    /// The resources go in a file: given "-", crun opens /dev/stdin, which a node's berthd may not have (a shell as
    /// PID 1 makes none).
    /// </summary>
    public async Task UpdateAsync(string id, byte[] resourcesJson, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Root);
        var file = Path.Combine(Root, $"{id}.resources-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}.json");
        await File.WriteAllBytesAsync(file, resourcesJson, cancellationToken);
        try
        {
            await RunAsync(["update", "--resources", file, id], cancellationToken);
        }
        finally
        {
            File.Delete(file);
        }
    }

    public Command Command(IEnumerable<string> args) =>
        Cli.Wrap(Binary).WithArguments(SystemdCgroup ? ["--root", Root, "--systemd-cgroup", .. args] : ["--root", Root, .. args]).WithValidation(CommandResultValidation.None);

    private async Task RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var result = await Command(args).ExecuteBufferedAsync(cancellationToken);
        if (result.ExitCode != 0)
            throw new ContainerRuntimeException($"{Binary} {args[0]} {args[^1]}: {LastLine(result.StandardError)}");
    }

    /// <summary>runc logs as logrus text on stderr; its last line holds the error.</summary>
    public static string LastLine(string output)
    {
        var line = output.TrimEnd().Split('\n')[^1];
        var message = line.IndexOf("msg=\"", StringComparison.Ordinal);
        if (message < 0) return line;
        var text = line[(message + 5)..];
        var end = text.LastIndexOf('"');
        return (end < 0 ? text : text[..end]).Replace("\\\"", "\"", StringComparison.Ordinal);
    }
}

/// <summary>The parts of an OCI runtime features document (runtime-spec features.md) that Berth looks at.</summary>
public sealed record OciRuntimeFeatures(IReadOnlySet<string> MountOptions, IReadOnlySet<string> Namespaces)
{
    public static readonly OciRuntimeFeatures None = new(new HashSet<string>(), new HashSet<string>());

    /// <summary>The newest runtime-spec version the runtime takes (<c>ociVersionMax</c>); "" when unknown.</summary>
    public string OciVersionMax { get; init; } = "";

    /// <summary><c>linux.netDevices.enabled</c>: it moves network interfaces into the container (runtime-spec 1.3).</summary>
    public bool NetDevices { get; init; }

    /// <summary>
    /// <c>mountOptions</c>, <c>linux.namespaces</c>, <c>ociVersionMax</c> and <c>linux.netDevices.enabled</c>; what is
    /// missing or of another shape counts as none.
    /// </summary>
    public static OciRuntimeFeatures Parse(string featuresJson)
    {
        using var document = JsonDocument.Parse(featuresJson);
        var root = document.RootElement;
        var linux = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("linux", out var l) ? l : default;
        return new OciRuntimeFeatures(Strings(root, "mountOptions"), Strings(linux, "namespaces"))
        {
            OciVersionMax = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("ociVersionMax", out var max) && max.ValueKind == JsonValueKind.String
                ? max.GetString()!
                : "",
            NetDevices = linux.ValueKind == JsonValueKind.Object && linux.TryGetProperty("netDevices", out var net) && net.ValueKind == JsonValueKind.Object
                         && net.TryGetProperty("enabled", out var enabled) && enabled.ValueKind == JsonValueKind.True,
        };
    }

    /// <summary>Whether <see cref="OciVersionMax"/> is at least <paramref name="version"/> (major.minor.patch; a suffix such as -dev is below its release).</summary>
    public bool TakesSpecVersion(string version)
    {
        static (int, int, int, bool) Parts(string text)
        {
            var dash = text.IndexOf('-', StringComparison.Ordinal);
            var numbers = (dash < 0 ? text : text[..dash]).Split('.').Select(p => int.TryParse(p, out var n) ? n : 0).Concat([0, 0, 0]).ToArray();
            return (numbers[0], numbers[1], numbers[2], dash < 0);
        }
        return OciVersionMax.Length > 0 && Parts(OciVersionMax).CompareTo(Parts(version)) >= 0;
    }

    private static HashSet<string> Strings(JsonElement parent, string property)
    {
        var values = new HashSet<string>(StringComparer.Ordinal);
        if (parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(property, out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var value in list.EnumerateArray())
                if (value.ValueKind == JsonValueKind.String && value.GetString() is { } text) values.Add(text);
        }
        return values;
    }
}
