namespace Berth.Shim.Logging;

/// <summary>Where the CRI log's entries go, each in one write.</summary>
internal interface ILogSink : IDisposable
{
    void Write(ReadOnlySpan<byte> entry);
}
