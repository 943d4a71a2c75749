using Berth.ImageStore.Images;

namespace Berth.ImageStore.Tests;

/// <summary>Removals and pulls agree on what is in use: a removal never takes what a pull claimed.</summary>
public sealed class ContentClaimsTests
{
    [Fact]
    public void A_removal_runs_only_for_content_no_other_pull_claims()
    {
        var claims = new ContentClaims();
        var removed = new List<string>();
        using (var pull = claims.Begin())
        {
            pull.Use("sha256:a");
            Assert.False(claims.ReleaseUnlessClaimed("sha256:a", () => removed.Add("a")));
            // A pull taking back what it wrote itself is not held off by its own claim, but by another's.
            Assert.True(claims.ReleaseUnlessClaimed("sha256:a", () => removed.Add("a by its pull"), except: pull));
            using var other = claims.Begin();
            other.Use("sha256:a");
            Assert.False(claims.ReleaseUnlessClaimed("sha256:a", () => removed.Add("a again"), except: pull));
        }
        Assert.True(claims.ReleaseUnlessClaimed("sha256:a", () => removed.Add("a at last")));
        Assert.Equal(["a by its pull", "a at last"], removed);
    }

    [Fact]
    public async Task A_claim_made_while_a_removal_runs_waits_for_it()
    {
        var claims = new ContentClaims();
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var removal = Task.Run(() => claims.ReleaseUnlessClaimed("snapshot:x", () =>
        {
            inside.Set();
            release.Wait();
        }));
        inside.Wait();
        using var pull = claims.Begin();
        var claimed = Task.Run(() => pull.Use("snapshot:x"));
        Assert.NotSame(claimed, await Task.WhenAny(claimed, Task.Delay(200)));
        release.Set();
        Assert.True(await removal);
        await claimed;
    }
}
