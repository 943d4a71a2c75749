namespace Berth.Sandbox.Tests;

public sealed class BandwidthTests
{
    [Theory]
    [InlineData("10M", 10_000_000)]
    [InlineData("1.5G", 1_500_000_000)]
    [InlineData("100k", 100_000)]
    [InlineData("1Mi", 1_048_576)]
    [InlineData("2Gi", 2_147_483_648)]
    [InlineData("5000", 5000)]
    public void Kubernetes_quantities_are_bits_per_second(string text, long expected)
    {
        Assert.Equal(expected, Bandwidth.Parse(Bandwidth.IngressAnnotation, text));
    }

    [Theory]
    [InlineData("fast")]
    [InlineData("-1M")]
    [InlineData("0")]
    public void Anything_else_names_the_annotation(string text)
    {
        var error = Assert.Throws<SandboxRequestException>(() => Bandwidth.Parse(Bandwidth.EgressAnnotation, text));
        Assert.StartsWith("annotations[kubernetes.io/egress-bandwidth]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Only_the_annotated_directions_appear()
    {
        var bandwidth = Bandwidth.FromAnnotations(new Dictionary<string, string> { [Bandwidth.EgressAnnotation] = "1M" });
        Assert.NotNull(bandwidth);
        Assert.Equal("""{"egressRate":1000000,"egressBurst":2147483647}""", bandwidth.ToJsonString());
        Assert.Null(Bandwidth.FromAnnotations(new Dictionary<string, string> { ["other"] = "1" }));
    }
}
