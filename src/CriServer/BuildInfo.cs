using System.Reflection;

namespace Berth.CriServer;

internal static class BuildInfo
{
    public const string RuntimeName = "berth";

    /// <summary>The CRI version string that kubelet's remote runtime expects in VersionResponse.version.</summary>
    public const string KubeletApiVersion = "0.1.0";

    public const string CriApiVersion = "v1";

    public static string Version { get; } =
        typeof(BuildInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";
}
