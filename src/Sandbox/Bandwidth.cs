using System.Globalization;
using System.Text.Json.Nodes;

namespace Berth.Sandbox;

/// <summary>
/// The bandwidth capability from the pod annotations kubelet sets (kubernetes.io/ingress-bandwidth and
/// kubernetes.io/egress-bandwidth, Kubernetes quantities in bits per second).
/// </summary>
internal static class Bandwidth
{
    public const string IngressAnnotation = "kubernetes.io/ingress-bandwidth";
    public const string EgressAnnotation = "kubernetes.io/egress-bandwidth";

    public static JsonObject? FromAnnotations(IReadOnlyDictionary<string, string> annotations)
    {
        var ingress = annotations.TryGetValue(IngressAnnotation, out var i) ? Parse(IngressAnnotation, i) : (long?)null;
        var egress = annotations.TryGetValue(EgressAnnotation, out var e) ? Parse(EgressAnnotation, e) : (long?)null;
        if (ingress is null && egress is null) return null;
        var result = new JsonObject();
        // Burst is not in the annotations; as other runtimes do, allow the largest the plugin accepts.
        if (ingress is { } inRate)
        {
            result["ingressRate"] = inRate;
            result["ingressBurst"] = int.MaxValue;
        }
        if (egress is { } outRate)
        {
            result["egressRate"] = outRate;
            result["egressBurst"] = int.MaxValue;
        }
        return result;
    }

    /// <summary>A Kubernetes quantity: decimal (k, M, G, T) or binary (Ki, Mi, Gi, Ti) suffixes.</summary>
    internal static long Parse(string annotation, string text)
    {
        (string Suffix, double Factor)[] suffixes =
            [("Ki", 1024), ("Mi", 1024 * 1024), ("Gi", 1024d * 1024 * 1024), ("Ti", 1024d * 1024 * 1024 * 1024),
             ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)];
        var (number, factor) = (text.Trim(), 1d);
        foreach (var (suffix, value) in suffixes)
        {
            if (!number.EndsWith(suffix, StringComparison.Ordinal)) continue;
            (number, factor) = (number[..^suffix.Length], value);
            break;
        }
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount) || amount <= 0)
            throw new SandboxRequestException($"annotations[{annotation}]: '{text}' is not a bandwidth such as 10M");
        return (long)(amount * factor);
    }
}
