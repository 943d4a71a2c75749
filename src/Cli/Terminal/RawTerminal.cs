using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Berth.Cli.Terminal;

/// <summary>
/// The local terminal in raw mode for <c>exec -t</c> (what cfmakeraw does: no echo, no line editing, no signals from
/// keys, bytes through unchanged), restored on dispose.
/// </summary>
internal sealed unsafe class RawTerminal : IDisposable
{
    private readonly termios _saved;

    private RawTerminal(termios saved) => _saved = saved;

    public static bool IsTerminal(int fd) => isatty(fd) == 1;

    public static RawTerminal? Enter()
    {
        if (!IsTerminal(0)) return null;
        termios saved;
        if (tcgetattr(0, &saved) != 0) return null;
        var raw = saved;
        raw.c_iflag &= ~(uint)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
        raw.c_oflag &= ~(uint)OPOST;
        raw.c_lflag &= ~(uint)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
        raw.c_cflag &= ~(uint)(CSIZE | PARENB);
        raw.c_cflag |= (uint)CS8;
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        return tcsetattr(0, (int)TCSANOW, &raw) == 0 ? new RawTerminal(saved) : null;
    }

    /// <summary>The size of the terminal on stdout, or null when it is not one.</summary>
    public static (ushort Width, ushort Height)? Size()
    {
        winsize size;
        return ioctl(1, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 ? (size.ws_col, size.ws_row) : null;
    }

    public void Dispose()
    {
        var saved = _saved;
        _ = tcsetattr(0, (int)TCSANOW, &saved);
    }
}
