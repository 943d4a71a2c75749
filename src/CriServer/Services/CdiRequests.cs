using Berth.Cri.V1;
using Berth.Runtime.Cdi;
using Grpc.Core;

namespace Berth.CriServer.Services;

/// <summary>
/// The CDI devices a container asks for, as containerd and CRI-O read them: <c>CDI_devices</c> (field 17, what
/// kubelet sends for DRA claims), then the values of <c>cdi.k8s.io/&lt;key&gt;</c> annotations (comma-separated, what
/// device plugins write), keys in order; each fully qualified, duplicates dropped.
/// </summary>
internal static class CdiRequests
{
    public const string AnnotationPrefix = "cdi.k8s.io/";

    public static IReadOnlyList<string> Of(ContainerConfig config)
    {
        var devices = new List<string>();
        for (var i = 0; i < config.CDIDevices.Count; i++)
        {
            var name = config.CDIDevices[i].Name;
            if (CdiNames.ParseQualified(name, out var error) is null)
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"config.CDI_devices[{i}].name: '{name}': {error}"));
            devices.Add(name);
        }
        foreach (var (key, value) in config.Annotations.Where(a => a.Key.StartsWith(AnnotationPrefix, StringComparison.Ordinal)).OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            foreach (var name in value.Split(','))
            {
                if (CdiNames.ParseQualified(name, out var error) is null)
                    throw new RpcException(new Status(StatusCode.InvalidArgument, $"config.annotations[{key}]: '{name}': {error}"));
                devices.Add(name);
            }
        }
        return [.. devices.Distinct(StringComparer.Ordinal)];
    }
}
