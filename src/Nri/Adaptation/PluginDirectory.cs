using Microsoft.Extensions.Logging;

namespace Berth.Nri.Adaptation;

/// <summary>
/// Pre-registered plugins: the executable files of the plugin directory named <c>NN-name</c>, each with its
/// configuration from <c>NN-name.conf</c> or else <c>name.conf</c> in the configuration directory.
/// </summary>
internal static partial class PluginDirectory
{
    public static IReadOnlyList<(string Index, string Name, string Path, string Config)> Discover(NriOptions options, ILogger logger)
    {
        if (!Directory.Exists(options.PluginPath)) return [];
        var found = new List<(string, string, string, string)>();
        foreach (var path in Directory.EnumerateFiles(options.PluginPath).Order(StringComparer.Ordinal))
        {
            var file = Path.GetFileName(path);
            if ((File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0) continue;
            var dash = file.IndexOf('-', StringComparison.Ordinal);
            var (index, name) = dash < 0 ? ("", file) : (file[..dash], file[(dash + 1)..]);
            if (dash < 0 || NriPlugin.CheckIndex(index) is not null || NriPlugin.CheckName(name) is not null)
            {
                LogSkipped(logger, path);
                continue;
            }
            found.Add((index, name, path, ReadConfig(options.PluginConfigPath, index, name)));
        }
        return found;
    }

    private static string ReadConfig(string directory, string index, string name)
    {
        foreach (var candidate in new[] { $"{index}-{name}.conf", $"{name}.conf" })
        {
            var path = Path.Combine(directory, candidate);
            if (File.Exists(path)) return File.ReadAllText(path);
        }
        return "";
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "NRI: {Path} is not named NN-name (a two-digit index, a dash, a name of [A-Za-z0-9-_.+]); not started")]
    private static partial void LogSkipped(ILogger logger, string path);
}
