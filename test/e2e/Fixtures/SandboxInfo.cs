using System.Text.Json;
using Berth.Cri.V1;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>What a sandbox's verbose status tells the tests about it.</summary>
public static class SandboxInfo
{
    /// <summary>The pinned namespace files by kind (network, ipc, uts, pid), from PodSandboxStatus' verbose info.</summary>
    public static async Task<Dictionary<string, string>> NamespacesOfAsync(this BerthDaemon daemon, string id)
    {
        var status = await daemon.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = true });
        using var info = JsonDocument.Parse(status.Info["info"]);
        return info.RootElement.GetProperty("namespacePaths").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
    }
}
