using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CliWrap;

namespace Berth.Cni;

/// <summary>Executes one plugin as the CNI spec's protocol says: environment variables in, config on stdin, result or error on stdout.</summary>
internal sealed class CniPluginRunner(IReadOnlyList<string> binDirs)
{
    /// <summary>Runs one command; <paramref name="runtime"/> is null for the network-wide STATUS and GC, which have no attachment.</summary>
    public async Task<JsonObject?> InvokeAsync(string command, string pluginType, JsonObject pluginConfig, CniRuntimeConfig? runtime, CancellationToken cancellationToken)
    {
        var binary = binDirs.Select(dir => Path.Combine(dir, pluginType)).FirstOrDefault(File.Exists)
                     ?? throw new CniException($"CNI plugin '{pluginType}' was not found in {string.Join(", ", binDirs)}");
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["CNI_COMMAND"] = command,
            ["CNI_PATH"] = string.Join(':', binDirs),
        };
        if (runtime is not null)
        {
            environment["CNI_CONTAINERID"] = runtime.ContainerId;
            environment["CNI_NETNS"] = runtime.NetnsPath;
            environment["CNI_IFNAME"] = runtime.IfName;
            environment["CNI_ARGS"] = string.Join(';', runtime.Args.Select(a => $"{a.Key}={a.Value}"));
        }
        using var span = Tracing.Source.StartActivity(SpanName(command));
        span?.SetTag("cni.plugin", pluginType);
        span?.SetTag("cni.network", (string?)pluginConfig["name"]);
        var stdin = Encoding.UTF8.GetBytes(pluginConfig.ToJsonString());
        using var stdout = new MemoryStream();
        var stderr = new StringBuilder();
        var result = await Cli.Wrap(binary)
            .WithEnvironmentVariables(environment)
            .WithStandardInputPipe(PipeSource.FromBytes(stdin))
            .WithStandardOutputPipe(PipeTarget.ToStream(stdout))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(cancellationToken);

        var output = stdout.ToArray();
        if (result.ExitCode != 0)
        {
            var error = PluginError(pluginType, command, result.ExitCode, output, stderr.ToString());
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, error.Message);
            throw error;
        }
        if (command != "ADD") return null;
        try
        {
            return JsonNode.Parse(output) as JsonObject ?? throw new CniException($"{pluginType} ADD printed no result object");
        }
        catch (JsonException e)
        {
            throw new CniException($"{pluginType} ADD printed a result that is not JSON: {e.Message}");
        }
    }

    private static string SpanName(string command) => command switch
    {
        "ADD" => "cni.add",
        "DEL" => "cni.del",
        "CHECK" => "cni.check",
        "STATUS" => "cni.status",
        _ => "cni.gc",
    };

    /// <summary>The spec's error object ({"code", "msg", "details"}) when the plugin printed one, else its exit code and stderr.</summary>
    private static CniException PluginError(string plugin, string command, int exitCode, byte[] stdout, string stderr)
    {
        try
        {
            if (stdout.Length > 0 && JsonNode.Parse(stdout) is JsonObject error && error["msg"] is not null)
            {
                var code = error["code"]?.GetValue<int>() ?? 0;
                var details = error["details"]?.GetValue<string>();
                return new CniException($"{plugin} {command} failed: {error["msg"]!.GetValue<string>()}{(string.IsNullOrEmpty(details) ? "" : ": " + details)}", code);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
        }
        var message = stderr.Trim();
        return new CniException($"{plugin} {command} exited with {exitCode}{(message.Length > 0 ? ": " + message : "")}");
    }
}
