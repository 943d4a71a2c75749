using System.Text;
using Berth.ImageStore.Content;
using Berth.ImageStore.Images;

namespace Berth.ImageStore.Tests;

public sealed class DigestTests
{
    [Fact]
    public void Digest_of_known_content()
    {
        // sha256("abc") from FIPS 180-2.
        Assert.Equal("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Digest.Compute("abc"u8).ToString());
    }

    [Theory]
    [InlineData("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")]
    [InlineData("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("sha256:ba7816bf")]
    [InlineData("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    public void Only_lowercase_sha256_digests_parse(string text)
    {
        Assert.False(Digest.TryParse(text, out _));
    }

    [Fact]
    public void Chain_ids_follow_the_image_spec()
    {
        var a = Digest.Compute("a"u8);
        var b = Digest.Compute("b"u8);
        var c = Digest.Compute("c"u8);

        var chain = ChainId.Compute([a, b, c]);

        Assert.Equal(a, chain[0]);
        var ab = Digest.Compute(Encoding.ASCII.GetBytes($"{a} {b}"));
        Assert.Equal(ab, chain[1]);
        Assert.Equal(Digest.Compute(Encoding.ASCII.GetBytes($"{ab} {c}")), chain[2]);
    }
}
