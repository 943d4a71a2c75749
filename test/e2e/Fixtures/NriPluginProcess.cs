using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// The NRI test plugin (test/e2e/NriTestPlugin, built beside the tests) as a process: external, connecting to a
/// berthd's NRI socket, or installed as a pre-registered plugin that berthd starts. Its events go to a record file.
/// </summary>
public sealed class NriPluginProcess : IDisposable
{
    public static string Binary => Path.Combine(AppContext.BaseDirectory, "nri-test-plugin");

    private readonly Process? _process;
    private readonly StringBuilder? _output;

    private NriPluginProcess(string record, Process? process, StringBuilder? output)
    {
        (Record, _process, _output) = (record, process, output);
    }

    /// <summary>The external plugin's process ID (0 for an installed one, which berthd starts).</summary>
    public int Pid => _process?.Id ?? 0;

    /// <summary>Where the plugin appends "NN-name Event pod=... container=..." lines.</summary>
    public string Record { get; }

    public string Output
    {
        get
        {
            if (_output is null) return "";
            lock (_output) return _output.ToString();
        }
    }

    /// <summary>Starts an external plugin on <paramref name="daemon"/>'s NRI socket and waits until berthd lists it.</summary>
    public static async Task<NriPluginProcess> ConnectAsync(
        BerthDaemon daemon, string index, string name, Dictionary<string, object?> behavior, bool reconnect = false, bool record = true)
    {
        var recordFile = RecordFile(daemon, index, name);
        if (record) behavior["record"] = recordFile;
        var file = Path.Combine(daemon.Directory, $"nri-{index}-{name}.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(behavior));
        var args = new List<string> { "--socket", daemon.NriSocket, "--name", name, "--idx", index, "--behavior", file };
        if (reconnect) args.Add("--reconnect");
        var (process, output) = ChildProcess.Start(Binary, args);
        var plugin = new NriPluginProcess(recordFile, process, output);
        try
        {
            await WaitConnectedAsync(daemon, $"{index}-{name}");
        }
        catch
        {
            plugin.Dispose();
            throw;
        }
        return plugin;
    }

    /// <summary>Installs a pre-registered plugin in the daemon's plugin directory (<c>NN-name</c>) with its config (<c>NN-name.conf</c>).</summary>
    public static NriPluginProcess Install(string daemonDirectory, string index, string name, Dictionary<string, object?> behavior)
    {
        var plugins = Directory.CreateDirectory(Path.Combine(daemonDirectory, "nri", "plugins")).FullName;
        var config = Directory.CreateDirectory(Path.Combine(daemonDirectory, "nri", "conf.d")).FullName;
        var record = Path.Combine(daemonDirectory, $"nri-{index}-{name}.log");
        behavior["record"] = record;
        File.WriteAllText(Path.Combine(config, $"{index}-{name}.conf"), JsonSerializer.Serialize(behavior));
        var executable = Path.Combine(plugins, $"{index}-{name}");
        // berthd starts it with NRI's environment only; exec keeps that and the connection on fd 3.
        File.WriteAllText(executable, $"#!/bin/sh\nexec {Binary}\n");
        File.SetUnixFileMode(executable, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new NriPluginProcess(record, null, null);
    }

    public static async Task WaitConnectedAsync(BerthDaemon daemon, string plugin, bool connected = true)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (Listed(await PluginsAsync(daemon), plugin) == connected) return;
            await Task.Delay(50);
        }
        throw new TimeoutException($"NRI plugin {plugin} was {(connected ? "never" : "still")} listed by berthd; its log:\n{daemon.Output}");
    }

    /// <summary>berthd's Status(verbose) "nri" entry: the connected plugins.</summary>
    public static async Task<JsonElement> PluginsAsync(BerthDaemon daemon)
    {
        var status = await daemon.Runtime.StatusAsync(new Cri.V1.StatusRequest { Verbose = true });
        using var document = JsonDocument.Parse(status.Info["nri"]);
        return document.RootElement.GetProperty("plugins").Clone();
    }

    private static bool Listed(JsonElement plugins, string fullName) =>
        plugins.EnumerateArray().Any(p => $"{p.GetProperty("index").GetString()}-{p.GetProperty("name").GetString()}" == fullName);

    /// <summary>The recorded events, each "Event pod=NAME container=NAME", without the plugin's name.</summary>
    public IReadOnlyList<string> Events() => File.Exists(Record)
        ? [.. File.ReadAllLines(Record).Select(l => l[(l.IndexOf(' ', StringComparison.Ordinal) + 1)..])]
        : [];

    public async Task WaitForEventAsync(string prefix, int count = 1)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (Events().Count(e => e.StartsWith(prefix, StringComparison.Ordinal)) < count)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no {count}× '{prefix}' in the plugin's record:\n{string.Join('\n', Events())}\n{Output}");
            await Task.Delay(50);
        }
    }

    private static string RecordFile(BerthDaemon daemon, string index, string name) => Path.Combine(daemon.Directory, $"nri-{index}-{name}.log");

    public void Dispose()
    {
        if (_process is null) return;
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
        _process.Dispose();
    }
}
