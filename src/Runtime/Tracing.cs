using System.Diagnostics;

namespace Berth.Runtime;

/// <summary>
/// This component's spans. With no listener (tracing off) StartActivity returns null at the cost of one check, so
/// phases are traced unconditionally.
/// </summary>
internal static class Tracing
{
    public static readonly ActivitySource Source = new("Berth.Runtime");
}

/// <summary>The consecutive phases of one operation as spans: each one ends where the next begins.</summary>
internal sealed class PhaseSpans : IDisposable
{
    private Activity? _current;

    public void Next(string name)
    {
        _current?.Dispose();
        _current = Tracing.Source.StartActivity(name);
    }

    public void Fail(Exception e) => _current?.SetStatus(ActivityStatusCode.Error, e.Message);

    public void Dispose()
    {
        _current?.Dispose();
        _current = null;
    }
}
