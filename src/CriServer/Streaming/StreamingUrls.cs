using Berth.Streaming.Server;

namespace Berth.CriServer.Streaming;

/// <summary>Hands out the URLs that Exec, Attach and PortForward return: the streaming listener's base and a fresh token.</summary>
public sealed class StreamingUrls(StreamingSessions sessions)
{
    /// <summary>Set once the listener is bound (its port may have been picked by the kernel).</summary>
    public Uri? BaseUri { get; set; }

    public string Issue(StreamingSession request)
    {
        var baseUri = BaseUri ?? throw new InvalidOperationException("the streaming server is not listening yet");
        return new Uri(baseUri, $"{request.Kind}/{sessions.Add(request)}").ToString();
    }
}
