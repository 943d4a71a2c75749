using Berth.ImageStore.Distribution;

namespace Berth.ImageStore.Tests;

public sealed class AuthChallengeTests
{
    [Fact]
    public void A_bearer_challenge_as_Docker_Hub_sends_it()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\"");

        Assert.NotNull(challenge);
        Assert.Equal("Bearer", challenge.Scheme);
        Assert.Equal("https://auth.docker.io/token", challenge.Realm);
        Assert.Equal("registry.docker.io", challenge.Service);
        Assert.Equal("repository:library/busybox:pull", challenge.Scope);
    }

    [Fact]
    public void Quoted_values_may_hold_commas_and_escapes_and_tokens_need_no_quotes()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://a/token\", scope=\"repository:a:pull,push\", error=insufficient_scope, note=\"say \\\"hi\\\"\"");

        Assert.NotNull(challenge);
        Assert.Equal("repository:a:pull,push", challenge.Scope);
        Assert.Equal("insufficient_scope", challenge.Parameters["error"]);
        Assert.Equal("say \"hi\"", challenge.Parameters["note"]);
    }

    [Fact]
    public void A_basic_challenge()
    {
        var challenge = AuthChallenge.Parse("Basic realm=\"Registry Realm\"");
        Assert.NotNull(challenge);
        Assert.Equal("Basic", challenge.Scheme);
        Assert.Equal("Registry Realm", challenge.Realm);
    }
}
