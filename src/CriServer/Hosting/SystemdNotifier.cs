using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Berth.CriServer.Hosting;

/// <summary>
/// sd_notify(3) for <c>Type=notify</c>: one datagram per state to the unix socket in <c>$NOTIFY_SOCKET</c> (a path,
/// or an abstract name written with a leading '@'), <c>READY=1</c> once the CRI socket serves, <c>STOPPING=1</c>
/// when shutdown begins, and <c>WATCHDOG=1</c> at half of <c>$WATCHDOG_USEC</c> when the unit sets a watchdog for
/// this process (<c>$WATCHDOG_PID</c> unset or ours). Without <c>$NOTIFY_SOCKET</c> (not under systemd) it does nothing.
/// </summary>
internal sealed class SystemdNotifier : IDisposable
{
    private readonly UnixDomainSocketEndPoint? _endpoint;
    private readonly Socket? _socket;
    private readonly CancellationTokenSource _stopping = new();

    public SystemdNotifier(IReadOnlyDictionary<string, string?> environment)
    {
        if (environment.GetValueOrDefault("NOTIFY_SOCKET") is not { Length: > 0 } path || path[0] is not ('/' or '@')) return;
        // An abstract socket's name starts with a NUL byte, which '@' stands for.
        _endpoint = new UnixDomainSocketEndPoint(path[0] == '@' ? "\0" + path[1..] : path);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        WatchdogInterval = Watchdog(environment);
    }

    /// <summary>How often <c>WATCHDOG=1</c> is sent: half the unit's <c>WatchdogSec</c>; null without a watchdog.</summary>
    public TimeSpan? WatchdogInterval { get; }

    /// <summary>
    /// Takes the variables out of berthd's environment, as sd_notify's <c>unset_environment</c> does, before any
    /// child starts: runc given <c>NOTIFY_SOCKET</c> relays the container's own notifications through a socket in its
    /// state directory, whose path is over a unix socket's 108 bytes there, and <c>runc start</c> fails.
    /// </summary>
    public static SystemdNotifier FromProcess()
    {
        var environment = new Dictionary<string, string?>();
        foreach (var name in (string[])["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"])
        {
            environment[name] = Environment.GetEnvironmentVariable(name);
            Environment.SetEnvironmentVariable(name, null);
        }
        return new SystemdNotifier(environment);
    }

    /// <summary>Ready: systemd starts the units ordered after berth (kubelet) now.</summary>
    public void Ready(string status)
    {
        Send($"READY=1\nSTATUS={status}\nMAINPID={Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}\n");
        if (WatchdogInterval is { } interval) _ = PetAsync(interval, _stopping.Token);
    }

    public void Stopping()
    {
        _stopping.Cancel();
        Send("STOPPING=1\nSTATUS=stopping\n");
    }

    private async Task PetAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken)) Send("WATCHDOG=1\n");
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Send(string state)
    {
        if (_socket is null) return;
        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(state), _endpoint!);
        }
        catch (SocketException)
        {
            // systemd went away or the socket is not ours to use; berthd serves regardless.
        }
    }

    private static TimeSpan? Watchdog(IReadOnlyDictionary<string, string?> environment)
    {
        if (!ulong.TryParse(environment.GetValueOrDefault("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) || usec == 0) return null;
        if (environment.GetValueOrDefault("WATCHDOG_PID") is { Length: > 0 } pid && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture)) return null;
        return TimeSpan.FromMicroseconds(usec / 2.0);
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
        _socket?.Dispose();
    }
}
