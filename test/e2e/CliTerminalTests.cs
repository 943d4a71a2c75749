using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>
/// <c>berth exec -t</c> on a real terminal (a pty of util-linux script): raw mode, the size sent at start and on
/// SIGWINCH, keys typed reaching the container's shell, and the command's exit status.
/// </summary>
public sealed class CliTerminalTests(ContainerTestBed bed) : IClassFixture<ContainerTestBed>, IAsyncLifetime
{
    private string _podId = "";
    private string _id = "";

    public async Task InitializeAsync()
    {
        var pod = bed.Pod("terminal");
        _podId = await bed.RunPodAsync(pod);
        _id = await bed.RunAsync(_podId, pod, bed.Container("shell", "sleep", "600"));
    }

    public Task DisposeAsync() => bed.RemovePodAsync(_podId);

    // runc exec -t makes the command's own console and copies the size onto it once the command has started: a
    // command that reads its size at once can race that copy, so each waits a second first.

    [Fact]
    public async Task Exec_t_runs_the_command_on_a_terminal_of_the_callers_size_and_returns_its_status()
    {
        var (code, output) = await BerthCli.RunOnTerminalAsync(bed.Daemon, $"stty cols 123 rows 45; $BERTH exec -it {_id} -- sh -c 'sleep 1; tty; stty size; exit 7'");
        Assert.True(code == 7, output);
        Assert.Contains("/dev/pts/", output, StringComparison.Ordinal);
        Assert.Contains("45 123", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_resize_of_the_callers_terminal_reaches_the_container()
    {
        // The size changes while the command sleeps; the terminal's foreground group is the shell's, so SIGWINCH is sent by hand (and a background job's stdin is /dev/null unless given).
        var (code, output) = await BerthCli.RunOnTerminalAsync(bed.Daemon,
            $"stty cols 100 rows 30; $BERTH exec -t {_id} -- sh -c 'sleep 1; stty size; sleep 3; stty size' </dev/tty & sleep 2.5; stty cols 80 rows 20; kill -WINCH $!; wait $!");
        Assert.True(code == 0, output);
        // A line may start with the terminal's keypad escapes.
        var sizes = output.Split('\n').Select(l => System.Text.RegularExpressions.Regex.Match(l, @"\d+ \d+\r?$").Value.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
        Assert.True(sizes.SequenceEqual(["30 100", "20 80"]), output);
    }

    [Fact]
    public async Task Keys_typed_on_the_terminal_reach_the_containers_shell_in_raw_mode()
    {
        // The keys are typed before berth puts the terminal in raw mode, and are read after: a raw terminal passes them through.
        var (code, output) = await BerthCli.RunOnTerminalAsync(bed.Daemon,
            $"(sleep 2; printf 'echo typed-$((6*7))\\r'; sleep 1; printf 'exit 5\\r') | script -q -e -c '$BERTH exec -it {_id} -- sh' /dev/null");
        Assert.True(code == 5, output);
        Assert.Contains("typed-42", output, StringComparison.Ordinal);
    }
}
