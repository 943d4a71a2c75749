using Berth.Runtime.Containers;

namespace Berth.Runtime.Tests;

/// <summary>What berthd reads of the node and of an OCI runtime to tell which optional features a handler has.</summary>
public sealed class RuntimeFeaturesTests
{
    [Fact]
    public void Mount_options_come_from_the_features_document()
    {
        // The shape of `runc features` (OCI runtime-spec features.md), cut down.
        const string json = """
            {"ociVersionMin":"1.0.0","ociVersionMax":"1.0.2-dev","hooks":["prestart"],
             "mountOptions":["bind","rbind","ro","rro","rrw"],"linux":{"namespaces":["mount"]}}
            """;
        var features = OciRuntimeFeatures.Parse(json);
        Assert.Contains("rro", features.MountOptions);
        Assert.Equal(5, features.MountOptions.Count);
        Assert.Equal(["mount"], features.Namespaces);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"mountOptions":null}""")]
    [InlineData("[]")]
    [InlineData("""{"linux":{"namespaces":"user"}}""")]
    public void A_document_without_mount_options_offers_none(string json)
    {
        var features = OciRuntimeFeatures.Parse(json);
        Assert.Empty(features.MountOptions);
        Assert.Empty(features.Namespaces);
    }

    [Theory]
    [InlineData("6.1.0-18-amd64", true)]
    [InlineData("6.18.44-fc-v769", true)]
    [InlineData("5.12.0", true)]
    [InlineData("5.12", true)]
    [InlineData("5.11.22-generic", false)]
    [InlineData("4.19.0-26-amd64\n", false)]
    [InlineData("5.15rc1", true)]
    [InlineData("garbage", false)]
    public void Mount_setattr_needs_linux_5_12(string release, bool expected) => Assert.Equal(expected, NodeProbe.KernelAtLeast(release, 5, 12));

    [Theory]
    [InlineData("cri-validate-deny-write", true)]
    [InlineData("cri-validate", false)]
    [InlineData("deny-write", false)]
    [InlineData("/usr/bin/man", true)]
    public void A_loaded_profile_is_one_line_of_the_kernels_list(string name, bool expected)
    {
        string[] profiles = ["cri-validate-deny-write (enforce)", "/usr/bin/man (complain)", "man_filter (enforce)"];
        Assert.Equal(expected, NodeProbe.ProfileListed(profiles, name));
    }
}
