using System.Text.Json.Nodes;

namespace Berth.Cli.Pods;

/// <summary>
/// The Pod fields berth play honours. A field outside this list is refused by its path, never dropped: as an unknown
/// field when the Kubernetes model has no such field either (a typo), else as one that needs what a bare node lacks.
/// </summary>
internal static class ManifestSchema
{
    private abstract record Shape;

    /// <summary>A value taken whole (a scalar, a string list, a string map).</summary>
    private sealed record Leaf : Shape;

    private sealed record Fields(IReadOnlyDictionary<string, Shape> Children) : Shape;

    private sealed record ListOf(Shape Element) : Shape;

    /// <summary>Accepted and not acted on, because it only ever describes state (status, server-set metadata).</summary>
    private sealed record OutputOnly : Shape;

    private static readonly Leaf Value = new();

    private static Fields Of(params (string Name, Shape Shape)[] children) => new(children.ToDictionary(c => c.Name, c => c.Shape));

    private static readonly Fields Profile = Of(("type", Value), ("localhostProfile", Value));

    private static readonly Fields ContainerSecurity = Of(
        ("runAsUser", Value), ("runAsGroup", Value), ("runAsNonRoot", Value), ("readOnlyRootFilesystem", Value),
        ("capabilities", Of(("add", Value), ("drop", Value))), ("privileged", Value), ("allowPrivilegeEscalation", Value),
        ("seccompProfile", Profile), ("appArmorProfile", Profile), ("procMount", Value));

    private static readonly Fields Container = Of(
        ("name", Value), ("image", Value), ("imagePullPolicy", Value), ("command", Value), ("args", Value), ("workingDir", Value),
        ("env", new ListOf(Of(("name", Value), ("value", Value), ("valueFrom", Of(
            ("fieldRef", Of(("fieldPath", Value), ("apiVersion", Value))),
            ("resourceFieldRef", Of(("containerName", Value), ("resource", Value), ("divisor", Value)))))))),
        ("ports", new ListOf(Of(("name", Value), ("containerPort", Value), ("hostPort", Value), ("hostIP", Value), ("protocol", Value)))),
        ("resources", Of(("limits", Value), ("requests", Value))),
        ("securityContext", ContainerSecurity),
        ("volumeMounts", new ListOf(Of(("name", Value), ("mountPath", Value), ("readOnly", Value), ("subPath", Value), ("mountPropagation", Value)))),
        ("stdin", Value), ("stdinOnce", Value), ("tty", Value),
        ("terminationMessagePath", Value), ("terminationMessagePolicy", Value),
        ("restartPolicy", Value));

    private static readonly Fields Pod = Of(
        ("apiVersion", Value), ("kind", Value),
        ("metadata", Of(("name", Value), ("namespace", Value), ("uid", Value), ("labels", Value), ("annotations", Value),
            ("creationTimestamp", new OutputOnly()), ("resourceVersion", new OutputOnly()), ("generation", new OutputOnly()),
            ("managedFields", new OutputOnly()), ("selfLink", new OutputOnly()))),
        ("spec", Of(
            ("containers", new ListOf(Container)),
            ("initContainers", new ListOf(Container)),
            ("volumes", new ListOf(Of(("name", Value),
                ("emptyDir", Of(("medium", Value), ("sizeLimit", Value))),
                ("hostPath", Of(("path", Value), ("type", Value))),
                ("image", Of(("reference", Value), ("pullPolicy", Value)))))),
            ("restartPolicy", Value), ("hostname", Value), ("hostNetwork", Value), ("hostPID", Value), ("hostIPC", Value),
            ("hostUsers", Value), ("shareProcessNamespace", Value), ("dnsPolicy", Value),
            ("dnsConfig", Of(("nameservers", Value), ("searches", Value), ("options", new ListOf(Of(("name", Value), ("value", Value)))))),
            ("securityContext", Of(("runAsUser", Value), ("runAsGroup", Value), ("runAsNonRoot", Value), ("supplementalGroups", Value),
                ("fsGroup", Value), ("sysctls", new ListOf(Of(("name", Value), ("value", Value)))), ("seccompProfile", Profile), ("appArmorProfile", Profile))),
            ("terminationGracePeriodSeconds", Value), ("runtimeClassName", Value), ("enableServiceLinks", Value))),
        ("status", new OutputOnly()));

    /// <summary>Every field of <paramref name="input"/> outside the list, each as "path: why".</summary>
    /// <param name="input">The document as written.</param>
    /// <param name="model">The document read into the Kubernetes model and written back: what the model knows.</param>
    public static IReadOnlyList<string> Refusals(JsonNode input, JsonNode? model)
    {
        var refusals = new List<string>();
        Walk(input, model, Pod, "", refusals);
        return refusals;
    }

    private static void Walk(JsonNode? input, JsonNode? model, Shape shape, string path, List<string> refusals)
    {
        switch (shape, input)
        {
            case (Fields fields, JsonObject inputObject):
                foreach (var (name, value) in inputObject)
                {
                    if (value is null || value is JsonArray { Count: 0 } || value is JsonObject { Count: 0 }) continue;
                    var fieldPath = path.Length == 0 ? name : $"{path}.{name}";
                    var modelValue = (model as JsonObject)?[name];
                    if (fields.Children.TryGetValue(name, out var child)) Walk(value, modelValue, child, fieldPath, refusals);
                    else refusals.Add(modelValue is null ? $"{fieldPath}: unknown field" : $"{fieldPath}: {WhyNot(name)}");
                }
                break;
            case (ListOf list, JsonArray inputArray):
                for (var i = 0; i < inputArray.Count; i++)
                    Walk(inputArray[i], (model as JsonArray) is { } modelArray && i < modelArray.Count ? modelArray[i] : null, list.Element, $"{path}[{i}]", refusals);
                break;
        }
    }

    private static string WhyNot(string field) => field switch
    {
        "envFrom" or "serviceAccountName" or "serviceAccount" or "automountServiceAccountToken" or "imagePullSecrets"
            or "configMap" or "secret" or "projected" or "downwardAPI" or "persistentVolumeClaim" or "csi" or "ephemeral"
            => "needs an API server, which berth play runs without",
        "livenessProbe" or "readinessProbe" or "startupProbe" or "lifecycle"
            => "probes and lifecycle hooks are not run by berth play",
        "nodeName" or "nodeSelector" or "affinity" or "tolerations" or "schedulerName" or "priority" or "priorityClassName"
            or "topologySpreadConstraints" or "schedulingGates" or "preemptionPolicy"
            => "scheduling does not apply: berth play runs the pod on this node",
        _ => "not supported by berth play",
    };
}
