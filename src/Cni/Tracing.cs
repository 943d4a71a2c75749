using System.Diagnostics;

namespace Berth.Cni;

/// <summary>
/// This component's spans. With no listener (tracing off) StartActivity returns null at the cost of one check, so
/// phases are traced unconditionally.
/// </summary>
internal static class Tracing
{
    public static readonly ActivitySource Source = new("Berth.Cni");
}
