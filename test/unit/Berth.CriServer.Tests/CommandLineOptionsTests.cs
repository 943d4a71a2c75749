using Berth.CriServer.Configuration;
using Microsoft.Extensions.Logging;

namespace Berth.CriServer.Tests;

public sealed class CommandLineOptionsTests
{
    [Fact]
    public void No_arguments_override_nothing()
    {
        Assert.Equal(new CommandLineOptions(), CommandLineOptions.Parse([]));
    }

    [Fact]
    public void Both_flag_forms_are_accepted()
    {
        var options = CommandLineOptions.Parse(["--config=/etc/b.toml", "--state", "/run/s", "--log-level=trace", "--help", "--version"]);

        Assert.Equal("/etc/b.toml", options.ConfigPath);
        Assert.Equal("/run/s", options.State);
        Assert.Equal(LogLevel.Trace, options.LogLevel);
        Assert.True(options.Help);
        Assert.True(options.Version);
    }

    [Theory]
    [InlineData(new[] { "--sockets", "/x" }, "unknown argument '--sockets'")]
    [InlineData(new[] { "serve" }, "unknown argument 'serve'")]
    [InlineData(new[] { "--root" }, "--root: a value is required")]
    [InlineData(new[] { "--log-level", "loud" }, "--log-level: 'loud' is not one of trace, debug, info, warn, error")]
    public void Bad_arguments_are_named(string[] args, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => CommandLineOptions.Parse(args));
        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
    }
}
