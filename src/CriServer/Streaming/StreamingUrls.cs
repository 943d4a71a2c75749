using Berth.Streaming.Server;

namespace Berth.CriServer.Streaming;

/// <summary>Hands out the URLs that Exec, Attach and PortForward return: the streaming listener's base and a fresh token.</summary>
public sealed class StreamingUrls(StreamingSessions sessions)
{
    private readonly TaskCompletionSource<Uri> _baseUri = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Known once the listener is bound (its port may have been picked by the kernel).</summary>
    public Uri? BaseUri => _baseUri.Task.IsCompletedSuccessfully ? _baseUri.Task.Result : null;

    public void Listening(Uri baseUri) => _baseUri.TrySetResult(baseUri);

    /// <summary>
    /// A URL for the request. The CRI socket can answer a moment before the streaming listener's port is known
    /// (Kestrel binds its listeners one after another), so an early call waits for it.
    /// </summary>
    public async Task<string> IssueAsync(StreamingSession session, CancellationToken cancellationToken)
    {
        var baseUri = await _baseUri.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        return new Uri(baseUri, $"{session.Kind}/{sessions.Add(session)}").ToString();
    }
}
