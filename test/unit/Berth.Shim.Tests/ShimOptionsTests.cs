using Berth.Shim.Container;

namespace Berth.Shim.Tests;

public sealed class ShimOptionsTests
{
    [Fact]
    public void The_command_line_berthd_writes_parses()
    {
        var options = ShimOptions.Parse(
            ["--id", "abc", "--bundle", "/run/b", "--runtime", "/usr/sbin/runc", "--runtime-root", "/run/r", "--exit-file", "/run/e/abc",
             "--log", "/var/log/pods/x/c.log", "--tty", "--stdin", "--stdin-once"], out var error);
        Assert.Equal("", error);
        Assert.NotNull(options);
        Assert.Equal(("abc", "/run/b", "/usr/sbin/runc", "/run/r", "/run/e/abc", "/var/log/pods/x/c.log"),
            (options.Id, options.Bundle, options.Runtime, options.RuntimeRoot, options.ExitFile, options.LogPath));
        Assert.True(options.Tty && options.Stdin && options.StdinOnce);
    }

    [Fact]
    public void Without_a_log_path_output_is_dropped()
    {
        var options = ShimOptions.Parse(["--id", "a", "--bundle", "b", "--runtime", "r", "--runtime-root", "rr", "--exit-file", "e"], out _);
        Assert.Null(options!.LogPath);
        Assert.False(options.Tty || options.Stdin || options.StdinOnce);
    }

    [Theory]
    [InlineData(new[] { "--id", "a" }, "are required")]
    [InlineData(new[] { "--bogus" }, "unknown option --bogus")]
    [InlineData(new[] { "--id" }, "--id needs a value")]
    public void Bad_command_lines_are_refused(string[] args, string message)
    {
        Assert.Null(ShimOptions.Parse(args, out var error));
        Assert.Contains(message, error, StringComparison.Ordinal);
    }
}
