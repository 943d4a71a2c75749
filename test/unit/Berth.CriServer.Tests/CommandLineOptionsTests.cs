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
        var options = CommandLineOptions.Parse(["--config=/etc/b.toml", "--state", "/run/s", "--log-level=trace", "--root:/var/b"]);

        Assert.Equal("/etc/b.toml", options.ConfigPath);
        Assert.Equal("/run/s", options.State);
        Assert.Equal("/var/b", options.Root);
        Assert.Equal(LogLevel.Trace, options.LogLevel);
    }

    [Theory]
    [InlineData(new[] { "--sockets", "/x" }, "Unrecognized command or argument '--sockets'")]
    [InlineData(new[] { "serve" }, "Unrecognized command or argument 'serve'")]
    [InlineData(new[] { "--root" }, "Required argument missing for option: '--root'")]
    [InlineData(new[] { "--log-level", "loud" }, "--log-level: 'loud' is not one of trace, debug, info, warn, error")]
    public void Bad_arguments_are_named(string[] args, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => CommandLineOptions.Parse(args));
        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
    }
}
