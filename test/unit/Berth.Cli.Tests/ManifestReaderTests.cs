using Berth.Cli.Pods;

namespace Berth.Cli.Tests;

public sealed class ManifestReaderTests
{
    private const string Pod = """
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers:
          - name: app
            image: busybox:1.36
            ports: [{containerPort: 80}]
            env: [{name: COUNT, value: "3"}]
            resources: {limits: {cpu: 500m, memory: 64Mi}}
        """;

    [Fact]
    public void A_pod_reads_with_numbers_strings_and_quantities()
    {
        var pod = Assert.Single(ManifestReader.Read(Pod));
        var container = pod.Spec.Containers[0];
        Assert.Equal(80, container.Ports[0].ContainerPort);
        Assert.Equal("3", container.Env[0].Value);
        Assert.Equal(0.5m, container.Resources.Limits["cpu"].ToDecimal());
        Assert.Equal(64L << 20, (long)container.Resources.Limits["memory"].ToDecimal());
    }

    [Fact]
    public void Several_documents_are_several_pods_and_another_kind_is_refused_by_document()
    {
        Assert.Equal(2, ManifestReader.Read(Pod + "\n---\n" + Pod.Replace("name: web", "name: two", StringComparison.Ordinal)).Count);
        var e = Assert.Throws<ManifestException>(() => ManifestReader.Read(Pod + "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n"));
        Assert.Equal("document 2: kind 'Service' is not a Pod: berth play runs Pod manifests only", e.Message);
    }

    [Fact]
    public void Every_unknown_or_unsupported_field_is_named_at_once()
    {
        var manifest = Pod.Replace("    image: busybox:1.36", "    image: busybox:1.36\n    imagePullSecret: x\n    readinessProbe: {tcpSocket: {port: 80}}", StringComparison.Ordinal)
            + "\n  serviceAccountName: robot\n";
        var e = Assert.Throws<ManifestException>(() => ManifestReader.Read(manifest));
        Assert.Contains("spec.containers[0].imagePullSecret: unknown field", e.Message, StringComparison.Ordinal);
        Assert.Contains("spec.containers[0].readinessProbe: probes and lifecycle hooks are not run by berth play", e.Message, StringComparison.Ordinal);
        Assert.Contains("spec.serviceAccountName: needs an API server", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrongly_typed_value_names_its_path()
    {
        var e = Assert.Throws<ManifestException>(() => ManifestReader.Read(Pod.Replace("containerPort: 80", "containerPort: [80]", StringComparison.Ordinal)));
        Assert.StartsWith("spec.containers[0].ports[0].containerPort", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Quoted_scalars_stay_strings_and_plain_ones_resolve()
    {
        var documents = Berth.Yaml.YamlToJson.Documents("a: '80'\nb: 80\nc: true\nd: ~\ne: 1.5\nf: 0x10\n");
        var root = documents[0]!.AsObject();
        Assert.Equal("80", root["a"]!.GetValue<string>());
        Assert.Equal(80, root["b"]!.GetValue<long>());
        Assert.True(root["c"]!.GetValue<bool>());
        Assert.Null(root["d"]);
        Assert.Equal(1.5, root["e"]!.GetValue<double>());
        Assert.Equal("0x10", root["f"]!.GetValue<string>());
    }

    [Fact]
    public void A_duplicate_key_is_refused()
    {
        var e = Assert.Throws<ManifestException>(() => ManifestReader.Read("a: 1\na: 2\n"));
        Assert.StartsWith("the manifest is not valid YAML (line 2, column 1)", e.Message, StringComparison.Ordinal);
    }
}
