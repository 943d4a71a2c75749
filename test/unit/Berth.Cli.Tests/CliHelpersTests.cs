using Berth.Cli.Commands;
using Berth.Cli.Pods;

namespace Berth.Cli.Tests;

public sealed class CliHelpersTests
{
    [Theory]
    [InlineData("$(A)-$(B)", "1-2")]
    [InlineData("$(MISSING)", "$(MISSING)")]
    [InlineData("$$(A)", "$(A)")]
    [InlineData("cost $$5", "cost $5")]
    [InlineData("plain", "plain")]
    public void Variable_references_expand_as_Kubernetes_does(string input, string expected) =>
        Assert.Equal(expected, PodEnvironment.Expand(input, new Dictionary<string, string> { ["A"] = "1", ["B"] = "2" }));

    [Theory]
    [InlineData("busybox", "Always")]
    [InlineData("busybox:latest", "Always")]
    [InlineData("localhost:5000/busybox", "Always")]
    [InlineData("localhost:5000/busybox:1.36", "IfNotPresent")]
    [InlineData("busybox@sha256:0123", "IfNotPresent")]
    public void The_default_pull_policy_is_the_API_servers(string reference, string policy) => Assert.Equal(policy, ImagePuller.DefaultPolicy(reference));

    [Fact]
    public void A_pod_slice_is_stopped_before_its_QoS_and_root_slices() => Assert.Equal(
    [
        ("berth_play-burstable-pod1_2.slice", "/sys/fs/cgroup/berth_play.slice/berth_play-burstable.slice/berth_play-burstable-pod1_2.slice"),
        ("berth_play-burstable.slice", "/sys/fs/cgroup/berth_play.slice/berth_play-burstable.slice"),
        ("berth_play.slice", "/sys/fs/cgroup/berth_play.slice"),
    ], PodTeardown.SliceAndParents("berth_play-burstable-pod1_2.slice"));

    [Theory]
    [InlineData("unix:///run/berth/berth.sock", "/run/berth/berth.sock")]
    [InlineData("unix:/tmp/b.sock", "/tmp/b.sock")]
    [InlineData("/tmp/b.sock", "/tmp/b.sock")]
    public void Endpoints_are_unix_sockets(string endpoint, string path) => Assert.Equal(path, CriConnection.SocketPathOf(endpoint));

    [Fact]
    public void A_TCP_endpoint_is_refused() =>
        Assert.Throws<CliException>(() => CriConnection.SocketPathOf("tcp://127.0.0.1:1234"));

    [Fact]
    public void CRI_log_records_parse_with_their_stream_and_partial_tag()
    {
        Assert.True(LogRecord.TryParse("2026-12-02T10:00:00.000000001Z stderr P half a line", out var partial));
        Assert.Equal(new LogRecord("2026-12-02T10:00:00.000000001Z", true, true, "half a line"), partial);
        Assert.True(LogRecord.TryParse("2026-12-02T10:00:00Z stdout F ", out var empty));
        Assert.Equal("", empty.Text);
        Assert.False(LogRecord.TryParse("garbage", out _));
    }

    [Fact]
    public void The_exit_code_comes_from_the_error_channels_status()
    {
        Assert.Equal(0, ExecCommand.ExitCode("""{"metadata":{},"status":"Success"}"""u8.ToArray()));
        Assert.Equal(7, ExecCommand.ExitCode("""{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"""u8.ToArray()));
    }

    [Theory]
    [InlineData("busybox", "docker.io/library/busybox:latest")]
    [InlineData("busybox:1.36", "docker.io/library/busybox:1.36")]
    [InlineData("team/app", "docker.io/team/app:latest")]
    [InlineData("127.0.0.1:5000/berth/faults:1", "127.0.0.1:5000/berth/faults:1")]
    [InlineData("localhost/app", "localhost/app:latest")]
    [InlineData("quay.io/x/y@sha256:00", "quay.io/x/y@sha256:00")]
    public void Pull_progress_finds_a_short_name_as_the_runtime_normalizes_it(string image, string normalized) =>
        Assert.Equal(normalized, PullProgressView.Normalize(image));

    [Theory]
    [InlineData(0, 0.0, "done")]
    [InlineData(1000, 0.0, "")]
    [InlineData(1000, 0.5, "")]
    [InlineData(1000, 1e-300, "")]
    [InlineData(1_000_000, 10_000.0, "ETA 01:40")]
    [InlineData(36_000_000, 10_000.0, "ETA 1:00:00")]
    [InlineData(long.MaxValue, 1.0, "ETA >99h")]
    public void Pull_progress_shows_the_time_left_only_while_a_layer_moves(long remaining, double rate, string eta) =>
        Assert.Equal(eta, PullProgressView.Eta(remaining, rate));
}
