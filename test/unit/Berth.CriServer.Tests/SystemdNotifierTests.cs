using System.Net.Sockets;
using System.Text;
using Berth.CriServer.Hosting;

namespace Berth.CriServer.Tests;

/// <summary>The sd_notify datagrams as a unit's notify socket receives them (a real unix datagram socket, no systemd).</summary>
public sealed class SystemdNotifierTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"berth-notify-{Guid.NewGuid():N}.sock");
    private readonly Socket _systemd = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);

    public SystemdNotifierTests() => _systemd.Bind(new UnixDomainSocketEndPoint(_path));

    public void Dispose()
    {
        _systemd.Dispose();
        File.Delete(_path);
    }

    private async Task<string> ReceiveAsync()
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var length = await _systemd.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    [Fact]
    public async Task Ready_then_stopping_reach_the_notify_socket()
    {
        using var notifier = new SystemdNotifier(new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = _path });
        Assert.Null(notifier.WatchdogInterval);
        notifier.Ready("serving CRI v1 on /run/berth/berth.sock");
        Assert.Equal($"READY=1\nSTATUS=serving CRI v1 on /run/berth/berth.sock\nMAINPID={Environment.ProcessId}\n", await ReceiveAsync());
        notifier.Stopping();
        Assert.Equal("STOPPING=1\nSTATUS=stopping\n", await ReceiveAsync());
    }

    [Fact]
    public async Task The_watchdog_is_fed_at_half_its_interval_until_stopping()
    {
        using var notifier = new SystemdNotifier(new Dictionary<string, string?>
        {
            ["NOTIFY_SOCKET"] = _path, ["WATCHDOG_USEC"] = "200000", ["WATCHDOG_PID"] = Environment.ProcessId.ToString(),
        });
        Assert.Equal(TimeSpan.FromMilliseconds(100), notifier.WatchdogInterval);
        notifier.Ready("serving");
        Assert.StartsWith("READY=1\n", await ReceiveAsync(), StringComparison.Ordinal);
        Assert.Equal("WATCHDOG=1\n", await ReceiveAsync());
        Assert.Equal("WATCHDOG=1\n", await ReceiveAsync());
        notifier.Stopping();
        // What was on its way may still arrive; then STOPPING, and nothing after it.
        string message;
        while ((message = await ReceiveAsync()) == "WATCHDOG=1\n")
        {
        }
        Assert.Equal("STOPPING=1\nSTATUS=stopping\n", message);
        await Task.Delay(300);
        Assert.Equal(0, _systemd.Available);
    }

    [Theory]
    [InlineData(null, null, null)]
    [InlineData("relative/path", null, null)]
    [InlineData("@berth", "0", null)]
    [InlineData("@berth", "100000", "1")]
    public void Without_a_socket_or_a_watchdog_for_this_process_nothing_is_set_up(string? socket, string? usec, string? pid)
    {
        using var notifier = new SystemdNotifier(new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = socket, ["WATCHDOG_USEC"] = usec, ["WATCHDOG_PID"] = pid });
        Assert.Null(notifier.WatchdogInterval);
        notifier.Ready("serving");
        notifier.Stopping();
    }

    [Fact]
    public async Task An_abstract_socket_is_written_with_a_leading_at_sign()
    {
        var name = $"berth-notify-{Guid.NewGuid():N}";
        using var abstractSocket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        abstractSocket.Bind(new UnixDomainSocketEndPoint("\0" + name));
        using var notifier = new SystemdNotifier(new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = "@" + name });
        notifier.Ready("serving");
        var buffer = new byte[512];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var length = await abstractSocket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        Assert.StartsWith("READY=1\n", Encoding.UTF8.GetString(buffer, 0, length), StringComparison.Ordinal);
    }
}
