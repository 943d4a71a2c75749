using Berth.ShimProtocol;

namespace Berth.Shim.Tests;

/// <summary>Every message between berthd and the shim, written by one side and read by the other, from the one shared source.</summary>
public sealed class ShimProtocolTests
{
    [Fact]
    public void The_command_line_round_trips()
    {
        var sent = new ShimCommandLine
        {
            Id = "abc", Bundle = "/run/b", Runtime = "/usr/sbin/runc", RuntimeRoot = "/run/r", ExitFile = "/run/e/abc",
            LogPath = "/var/log/pods/x/c.log", Tty = true, Stdin = true, StdinOnce = true, SystemdCgroup = true,
        };
        var args = sent.ToArguments();
        Assert.Equal(ShimCommandLine.Verb, args[0]);
        Assert.Equal(sent, ShimCommandLine.Parse(args[1..], out var error));
        Assert.Equal("", error);

        var plain = sent with { LogPath = null, Tty = false, Stdin = false, StdinOnce = false, SystemdCgroup = false };
        Assert.Equal(plain, ShimCommandLine.Parse(plain.ToArguments()[1..], out _));
    }

    [Fact]
    public void The_command_line_starts_with_what_berthd_looks_for_in_proc()
    {
        var args = new ShimCommandLine { Id = "abc", Bundle = "b", Runtime = "r", RuntimeRoot = "rr", ExitFile = "e" }.ToArguments();
        var cmdline = System.Text.Encoding.UTF8.GetBytes(string.Join('\0', ["/usr/bin/berth-shim", .. args]) + "\0");
        Assert.True(cmdline.AsSpan().StartsWith(ShimCommandLine.CmdlinePrefix("/usr/bin/berth-shim", "abc")));
        Assert.False(cmdline.AsSpan().StartsWith(ShimCommandLine.CmdlinePrefix("/usr/bin/berth-shim", "ab")));

        var pause = System.Text.Encoding.UTF8.GetBytes(string.Join('\0', ["/usr/bin/berth-shim", .. PodInfraCommandLine.ToArguments("pod1")]) + "\0");
        Assert.True(pause.AsSpan().StartsWith(PodInfraCommandLine.CmdlinePrefix("/usr/bin/berth-shim", "pod1")));
    }

    [Theory]
    [InlineData(new[] { "--id", "a" }, "are required")]
    [InlineData(new[] { "--bogus" }, "unknown option --bogus")]
    [InlineData(new[] { "--id" }, "--id needs a value")]
    public void Bad_command_lines_are_refused(string[] args, string message)
    {
        Assert.Null(ShimCommandLine.Parse(args, out var error));
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("child 4242", "child", 4242, null)]
    [InlineData("infra 7", "infra", 7, null)]
    [InlineData("ready", "ready", 0, null)]
    [InlineData("error unshare errno 1", "error", 0, "unshare errno 1")]
    [InlineData("child", "error", 0, "unexpected report 'child'")]
    [InlineData("child -3", "error", 0, "unexpected report 'child -3'")]
    [InlineData("ready 5", "error", 0, "unexpected report 'ready 5'")]
    [InlineData(null, "error", 0, "the helper exited without a report")]
    public void User_namespace_helper_reports_parse(string? line, string word, int pid, string? error) =>
        Assert.Equal((word, pid, error), UserNamespaceHelperProtocol.Parse(line));

    [Fact]
    public void The_user_namespace_helper_is_asked_for_an_infra_only_with_a_shared_PID_namespace()
    {
        Assert.Equal(["userns", "--sandbox", "s1"], UserNamespaceHelperProtocol.ToArguments("s1", sharedPid: false));
        Assert.Equal(["userns", "--sandbox", "s1", "--pid"], UserNamespaceHelperProtocol.ToArguments("s1", sharedPid: true));
    }

    [Fact]
    public void Reports_round_trip()
    {
        Assert.True(ShimReport.TryParse(ShimReport.Created(4242, 31_250), out var pid, out var micros, out var error));
        Assert.Equal((4242, 31_250L, (string?)null), (pid, micros, error));

        Assert.False(ShimReport.TryParse(ShimReport.Error("runc create failed:\nno such file"), out _, out _, out error));
        Assert.Equal("runc create failed: no such file", error);

        Assert.False(ShimReport.TryParse(null, out _, out _, out error));
        Assert.Null(error);
        Assert.False(ShimReport.TryParse("created -1 5", out _, out _, out error));
        Assert.Null(error);
        Assert.False(ShimReport.TryParse("created 4242", out _, out _, out error));
        Assert.Null(error);
    }

    [Fact]
    public void Control_requests_and_replies_round_trip()
    {
        Assert.Equal(ShimControlRequest.Reopen, ShimControlRequest.Parse(ShimControlRequest.Reopen.Format()));
        Assert.Equal(ShimControlRequest.Resize(200, 50), ShimControlRequest.Parse(ShimControlRequest.Resize(200, 50).Format()));
        Assert.Null(ShimControlRequest.Parse("resize 70000 1\n"));
        Assert.Null(ShimControlRequest.Parse("resize -1 1\n"));
        Assert.Null(ShimControlRequest.Parse("bogus\n"));

        Assert.Null(ShimControlRequest.ReplyError(ShimControlRequest.Ok + "\n"));
        Assert.Equal("no terminal", ShimControlRequest.ReplyError(ShimControlRequest.Failed("no terminal") + "\n"));
        Assert.Equal("unexpected reply ''", ShimControlRequest.ReplyError(""));
    }

    [Theory]
    [InlineData(0, 1_764_000_000_123_456_789L, false)]
    [InlineData(137, 1L, true)]
    [InlineData(-1, 0L, false)]
    public void The_exit_status_round_trips(int code, long exitedAt, bool oomKilled)
    {
        var status = new ShimExitStatus(code, exitedAt, oomKilled);
        Assert.Equal(status, ShimExitStatus.Parse(status.Format()));
        Assert.Equal($"{{\"exitCode\":{code},\"exitedAt\":{exitedAt},\"oomKilled\":{(oomKilled ? "true" : "false")}}}\n", status.Format());
    }

    [Fact]
    public void An_exit_file_of_an_older_shim_has_no_OOM_kill() =>
        Assert.Equal(new ShimExitStatus(137, 5), ShimExitStatus.Parse("{\"exitCode\":137,\"exitedAt\":5}\n"));

    [Theory]
    [InlineData("low 0\nhigh 3\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n", 2, 1)]
    [InlineData("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n", 0, 4)]
    [InlineData("", 0, 0)]
    [InlineData("oom x\noom_kill\n", 0, 0)]
    public void Memory_events_give_the_OOM_counts(string text, long oom, long oomKill) =>
        Assert.Equal(new Berth.Cgroups.MemoryEvents(oom, oomKill), Berth.Cgroups.MemoryEvents.Parse(System.Text.Encoding.ASCII.GetBytes(text)));

    [Theory]
    [InlineData("")]
    [InlineData("{\"exitCode\":1")]
    [InlineData("{\"exitCode\":99999999999,\"exitedAt\":1}")]
    [InlineData("{\"exitedAt\":1}")]
    public void A_file_that_is_not_an_exit_status_is_refused(string text) => Assert.Null(ShimExitStatus.Parse(text));

    [Fact]
    public void Attach_frame_headers_round_trip()
    {
        Span<byte> header = stackalloc byte[AttachFrame.HeaderLength];
        AttachFrame.WriteHeader(header, AttachFrame.Stderr, 65_536);
        Assert.Equal((AttachFrame.Stderr, 65_536), AttachFrame.ReadHeader(header));
        Assert.Equal([2, 0, 1, 0, 0], header.ToArray());
    }
}
