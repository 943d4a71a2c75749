using Berth.ImageStore.Content;

namespace Berth.ImageStore.Distribution;

/// <summary>
/// A blob's body from a registry that notices a stalled transfer and survives a dropped one. A read that brings
/// no byte within the progress timeout ends the pull (<see cref="PullStalledException"/>, as containerd's
/// image_pull_progress_timeout and CRI-O's pull_progress_timeout); a connection lost mid-body is opened again
/// with an HTTP range request from the byte it stopped at, up to <see cref="MaxResumes"/> times. The digest is
/// still verified over the whole stream by the caller.
/// </summary>
internal sealed class ResumableBlobStream : ReadOnlyStream
{
    public const int MaxResumes = 5;

    private readonly string _blob;
    private readonly Func<long, CancellationToken, Task<(Stream Body, long Start)>> _open;
    private readonly TimeSpan _progressTimeout;
    private Stream _body;
    private long _position;
    private int _resumes;
    private CancellationTokenSource? _stall;

    private ResumableBlobStream(string blob, Stream body, Func<long, CancellationToken, Task<(Stream, long)>> open, TimeSpan progressTimeout)
    {
        _blob = blob;
        _body = body;
        _open = open;
        _progressTimeout = progressTimeout;
    }

    /// <summary>
    /// Opens the blob. <paramref name="open"/> sends the request from an offset (0: the whole blob) and answers the
    /// body with the offset it really starts at (0 when the server ignored the range).
    /// </summary>
    public static async Task<ResumableBlobStream> OpenAsync(
        string blob, Func<long, CancellationToken, Task<(Stream Body, long Start)>> open, TimeSpan progressTimeout, CancellationToken cancellationToken)
    {
        var (body, _) = await open(0, cancellationToken);
        return new ResumableBlobStream(blob, body, open, progressTimeout);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var token = cancellationToken;
            if (_progressTimeout > TimeSpan.Zero)
            {
                // One timer for the stream's life, re-armed per read: no allocation per read.
                _stall ??= CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                _stall.CancelAfter(_progressTimeout);
                token = _stall.Token;
            }
            try
            {
                var read = await _body.ReadAsync(buffer, token);
                _stall?.CancelAfter(Timeout.InfiniteTimeSpan);
                _position += read;
                return read;
            }
            catch (Exception e) when (e is OperationCanceledException or IOException && _stall is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
            {
                throw new PullStalledException(
                    $"{_blob}: no progress for {_progressTimeout.TotalSeconds:0.###} s after {_position} bytes (images.pull_progress_timeout)");
            }
            catch (Exception e) when (e is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
            {
                if (_resumes == MaxResumes)
                    throw new RegistryException($"{_blob}: the connection was lost {MaxResumes + 1} times, the last after {_position} bytes: {e.Message}", e);
                _resumes++;
                await ResumeAsync(cancellationToken);
            }
        }
    }

    /// <summary>Pulls read asynchronously; a synchronous read gets neither the progress timeout nor resumption.</summary>
    public override int Read(Span<byte> buffer)
    {
        var read = _body.Read(buffer);
        _position += read;
        return read;
    }

    private async Task ResumeAsync(CancellationToken cancellationToken)
    {
        await _body.DisposeAsync();
        var (body, start) = await _open(_position, cancellationToken);
        _body = body;
        // A server that ignores Range sends the blob from its start: the bytes already delivered are skipped.
        var skip = _position - start;
        if (skip < 0) throw new RegistryException($"{_blob}: resumed at byte {start}, past the {_position} bytes delivered");
        var discard = new byte[Math.Min(skip, 64 * 1024)];
        while (skip > 0)
        {
            var read = await _body.ReadAsync(discard.AsMemory(0, (int)Math.Min(skip, discard.Length)), cancellationToken);
            if (read == 0) throw new RegistryException($"{_blob}: ended after {_position - skip} bytes when resumed");
            skip -= read;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _body.Dispose();
            _stall?.Dispose();
        }
        base.Dispose(disposing);
    }
}
