using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace Berth.Cli.Pods;

/// <summary>Reads one or more YAML documents of kind Pod into the Kubernetes models, refusing any other kind.</summary>
internal static class ManifestReader
{
    public static IReadOnlyList<V1Pod> Read(string text)
    {
        var pods = new List<V1Pod>();
        IReadOnlyList<JsonNode?> documents;
        try
        {
            documents = Berth.Yaml.YamlToJson.Documents(text);
        }
        catch (FormatException e)
        {
            throw new ManifestException("the manifest is " + e.Message);
        }
        for (var i = 0; i < documents.Count; i++)
        {
            if (documents[i] is not JsonObject document) continue;
            var where = documents.Count > 1 ? $"document {i + 1}: " : "";
            var kind = document["kind"]?.GetValue<object>()?.ToString();
            var apiVersion = document["apiVersion"]?.GetValue<object>()?.ToString();
            if (kind != "Pod") throw new ManifestException($"{where}kind '{kind ?? "(none)"}' is not a Pod: berth play runs Pod manifests only");
            if (apiVersion != "v1") throw new ManifestException($"{where}apiVersion '{apiVersion ?? "(none)"}': a Pod is apiVersion v1");
            V1Pod pod;
            try
            {
                pod = KubernetesJson.Deserialize<V1Pod>(document.DeepClone());
            }
            catch (JsonException e)
            {
                throw new ManifestException($"{where}{(e.Path is { Length: > 2 } path ? path[2..] : "the manifest")}: {FirstSentence(e.Message)}");
            }
            catch (FormatException e)
            {
                throw new ManifestException($"{where}{e.Message}");
            }
            var refusals = ManifestSchema.Refusals(document, JsonNode.Parse(KubernetesJson.Serialize(pod)));
            if (refusals.Count > 0)
                throw new ManifestException($"{where}pod '{pod.Metadata?.Name}' can't be run as written:\n  " + string.Join("\n  ", refusals));
            if (string.IsNullOrEmpty(pod.Metadata?.Name)) throw new ManifestException($"{where}metadata.name is required");
            if (pod.Spec?.Containers is not { Count: > 0 }) throw new ManifestException($"{where}spec.containers: a pod needs at least one container");
            pods.Add(pod);
        }
        if (pods.Count == 0) throw new ManifestException("the manifest holds no Pod");
        return pods;
    }

    private static string FirstSentence(string message) => message.Split(". Path:")[0];
}
