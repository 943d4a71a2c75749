using System.Globalization;
using System.Text.RegularExpressions;
using k8s.Models;

namespace Berth.Cli.Pods;

/// <summary>
/// A container's environment as the kubelet builds it (makeEnvironmentVariables): values in order, each expanded
/// against the ones before it, <c>valueFrom</c> resolved from the pod itself, and command and args expanded last.
/// </summary>
internal static partial class PodEnvironment
{
    public static List<KeyValuePair<string, string>> Resolve(V1Pod pod, V1Container container, string where, NodeFacts node, string? podIp)
    {
        var env = new List<KeyValuePair<string, string>>();
        var known = new Dictionary<string, string>();
        var list = container.Env ?? [];
        for (var i = 0; i < list.Count; i++)
        {
            var variable = list[i];
            var field = $"{where}.env[{i}]";
            var value = variable.ValueFrom is { } from ? ValueFrom(pod, container, from, $"{field}.valueFrom", node, podIp) : Expand(variable.Value ?? "", known);
            known[variable.Name] = value;
            env.RemoveAll(e => e.Key == variable.Name);
            env.Add(new(variable.Name, value));
        }
        return env;
    }

    /// <summary>Kubernetes' <c>$(VAR)</c> expansion: a defined name is replaced, an undefined one kept, <c>$$</c> is <c>$</c>.</summary>
    public static string Expand(string input, IReadOnlyDictionary<string, string> variables) =>
        input.Contains('$', StringComparison.Ordinal)
            ? Reference().Replace(input, m => m.Value == "$$" ? "$" : variables.TryGetValue(m.Groups[1].Value, out var value) ? value : m.Value)
            : input;

    private static string ValueFrom(V1Pod pod, V1Container container, V1EnvVarSource from, string field, NodeFacts node, string? podIp)
    {
        if (from.FieldRef is { } fieldRef) return FieldValue(pod, fieldRef.FieldPath, $"{field}.fieldRef.fieldPath", node, podIp);
        if (from.ResourceFieldRef is { } resourceRef)
        {
            var target = string.IsNullOrEmpty(resourceRef.ContainerName) ? container
                : pod.Spec.Containers.Concat(pod.Spec.InitContainers ?? []).FirstOrDefault(c => c.Name == resourceRef.ContainerName)
                  ?? throw new ManifestException($"{field}.resourceFieldRef.containerName: no container '{resourceRef.ContainerName}' in the pod");
            return ResourceValue(target, resourceRef, $"{field}.resourceFieldRef", node);
        }
        throw new ManifestException($"{field}: only fieldRef and resourceFieldRef are supported (the others need an API server)");
    }

    private static string FieldValue(V1Pod pod, string path, string field, NodeFacts node, string? podIp)
    {
        var match = MapKey().Match(path);
        if (match.Success)
        {
            var map = match.Groups[1].Value == "labels" ? pod.Metadata.Labels : pod.Metadata.Annotations;
            return map?.TryGetValue(match.Groups[2].Value, out var entry) == true ? entry : "";
        }
        return path switch
        {
            "metadata.name" => pod.Metadata.Name,
            "metadata.namespace" => pod.Metadata.NamespaceProperty ?? "default",
            "metadata.uid" => pod.Metadata.Uid,
            "spec.nodeName" => node.NodeName,
            "status.podIP" or "status.podIPs" => podIp ?? "",
            _ => throw new ManifestException($"{field}: '{path}' is not a field berth play can resolve (metadata.name, metadata.namespace, metadata.uid, metadata.labels['…'], metadata.annotations['…'], spec.nodeName, status.podIP)"),
        };
    }

    /// <summary>The kubelet's rounding: up, in units of the divisor; an unset limit is the node's capacity.</summary>
    private static string ResourceValue(V1Container container, V1ResourceFieldSelector selector, string field, NodeFacts node)
    {
        var divisor = selector.Divisor is { } d ? d.ToDecimal() : 1m;
        if (divisor <= 0) throw new ManifestException($"{field}.divisor: must be positive");
        var requests = KubeletResources.Requests(container.Resources);
        var limits = container.Resources?.Limits;
        decimal? Pick(IDictionary<string, ResourceQuantity>? map, string name) => map is not null && map.TryGetValue(name, out var q) ? q.ToDecimal() : null;
        var value = selector.Resource switch
        {
            "limits.cpu" => Pick(limits, "cpu") ?? node.Cpus,
            "requests.cpu" => Pick(requests, "cpu") ?? 0,
            "limits.memory" => Pick(limits, "memory") ?? node.MemoryBytes,
            "requests.memory" => Pick(requests, "memory") ?? 0,
            _ => throw new ManifestException($"{field}.resource: '{selector.Resource}' is not one of limits.cpu, requests.cpu, limits.memory, requests.memory"),
        };
        return ((long)Math.Ceiling(value / divisor)).ToString(CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")]
    private static partial Regex Reference();

    [GeneratedRegex(@"^metadata\.(labels|annotations)\['([^']+)'\]$")]
    private static partial Regex MapKey();
}
