using Berth.Streaming.Server;

namespace Berth.Streaming.Tests;

public sealed class StreamingSessionsTests
{
    private sealed class ManualTime : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }

    private sealed class NoCommand : IRemoteCommand
    {
        public RemoteCommandOptions Options { get; } = new(false, true, false, false);
        public Task<int?> RunAsync(RemoteCommandStreams streams, CancellationToken cancellationToken) => Task.FromResult<int?>(0);
    }

    private static RemoteCommandSession Exec() => new(StreamingSession.ExecKind, new NoCommand());

    [Fact]
    public void A_token_works_once()
    {
        var sessions = new StreamingSessions(new StreamingOptions());
        var token = sessions.Add(Exec());
        Assert.Equal(22, token.Length);
        Assert.NotNull(sessions.Take("exec", token));
        Assert.Null(sessions.Take("exec", token));
    }

    [Fact]
    public void An_expired_or_mismatched_token_finds_nothing()
    {
        var time = new ManualTime();
        var sessions = new StreamingSessions(new StreamingOptions { TokenLifetime = TimeSpan.FromMinutes(1) }, time);
        var expired = sessions.Add(Exec());
        var wrongKind = sessions.Add(Exec());
        time.Now += TimeSpan.FromSeconds(61);
        Assert.Null(sessions.Take("exec", expired));
        Assert.Null(sessions.Take("attach", wrongKind));
        Assert.Null(sessions.Take("exec", "forged"));
    }

    [Fact]
    public void Outstanding_tokens_are_bounded_but_expired_ones_make_room()
    {
        var time = new ManualTime();
        var sessions = new StreamingSessions(new StreamingOptions { MaxOutstandingTokens = 2 }, time);
        sessions.Add(Exec());
        sessions.Add(Exec());
        Assert.Throws<StreamingCapacityException>(() => sessions.Add(Exec()));
        time.Now += TimeSpan.FromMinutes(2);
        sessions.Add(Exec());
        Assert.Equal(1, sessions.Outstanding);
    }
}
