using System.Collections.Concurrent;
using System.Net;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>What the proxy does to one blob's body after <see cref="BlobFault.After"/> bytes.</summary>
public enum BlobFaultKind
{
    /// <summary>Drops the connection mid-body, <see cref="BlobFault.Times"/> times; later requests pass.</summary>
    Cut,

    /// <summary>Sends nothing more until <see cref="FaultyRegistryProxy.Release"/> (or disposal).</summary>
    Hold,

    /// <summary>Sends one byte every 200 ms until the client goes away.</summary>
    Trickle,
}

public sealed record BlobFault(string Digest, long After, BlobFaultKind Kind, int Times = 1);

/// <summary>
/// A plain-HTTP proxy on 127.0.0.1 in front of a test registry that can stall, trickle or cut a blob's body, for
/// the pull progress timeout, range resumption and cancellation tests. It records each blob request's Range
/// header, and when a trickled download's client went away.
/// </summary>
public sealed class FaultyRegistryProxy : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _client = new(new SocketsHttpHandler { AllowAutoRedirect = false });
    private readonly Uri _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _cuts;

    private FaultyRegistryProxy(Uri upstream, int port)
    {
        _upstream = upstream;
        Port = port;
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _loop = AcceptAsync();
    }

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";

    public BlobFault? Fault { get; set; }

    /// <summary>"GET /v2/…/blobs/sha256:… bytes=N-" for each blob request, in order.</summary>
    public ConcurrentQueue<string> BlobRequests { get; } = new();

    /// <summary>Completes when a trickled download's client closed the connection.</summary>
    public TaskCompletionSource ClientGone { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static FaultyRegistryProxy Start(RegistryServer registry) => new(registry.BaseUri, RegistryServer.FreePort());

    /// <summary>Lets held downloads go on, and clears the fault.</summary>
    public void Release()
    {
        Fault = null;
        _released.TrySetResult();
        _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(context));
        }
    }

    private async Task ServeAsync(HttpListenerContext context)
    {
        var response = context.Response;
        // Taken first: a Release after this point lets this request go, whenever it reaches the fault.
        var released = _released.Task;
        try
        {
            var path = context.Request.Url!.PathAndQuery;
            using var request = new HttpRequestMessage(new HttpMethod(context.Request.HttpMethod), new Uri(_upstream, path));
            foreach (var header in new[] { "Accept", "Authorization", "Range" })
            {
                if (context.Request.Headers[header] is { } value) request.Headers.TryAddWithoutValidation(header, value);
            }
            var isBlob = path.Contains("/blobs/sha256:", StringComparison.Ordinal);
            if (isBlob) BlobRequests.Enqueue($"{request.Method} {path} {context.Request.Headers["Range"]}".TrimEnd());

            using var upstream = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _stop.Token);
            response.StatusCode = (int)upstream.StatusCode;
            foreach (var (name, values) in upstream.Headers.Concat(upstream.Content.Headers))
            {
                if (name is "Content-Length" or "Transfer-Encoding" or "Connection") continue;
                response.Headers[name] = string.Join(",", values);
            }
            if (upstream.Content.Headers.ContentLength is { } length) response.ContentLength64 = length;
            await using var body = await upstream.Content.ReadAsStreamAsync(_stop.Token);
            var fault = Fault;
            if (isBlob && fault is not null && path.EndsWith(fault.Digest, StringComparison.Ordinal) && context.Request.HttpMethod == "GET")
                await FaultyCopyAsync(body, response, fault, released);
            else
                await body.CopyToAsync(response.OutputStream, _stop.Token);
            response.Close();
        }
        catch (Exception e) when (e is IOException or HttpListenerException or OperationCanceledException or HttpRequestException or ObjectDisposedException)
        {
            response.Abort();
        }
    }

    private async Task FaultyCopyAsync(Stream body, HttpListenerResponse response, BlobFault fault, Task released)
    {
        var head = new byte[fault.After];
        await body.ReadExactlyAsync(head, _stop.Token);
        await response.OutputStream.WriteAsync(head, _stop.Token);
        await response.OutputStream.FlushAsync(_stop.Token);
        switch (fault.Kind)
        {
            case BlobFaultKind.Cut when Interlocked.Increment(ref _cuts) <= fault.Times:
                response.Abort();
                return;
            case BlobFaultKind.Hold:
                await released.WaitAsync(_stop.Token);
                break;
            case BlobFaultKind.Trickle:
                var one = new byte[1];
                try
                {
                    while (await body.ReadAsync(one, _stop.Token) == 1)
                    {
                        await response.OutputStream.WriteAsync(one, _stop.Token);
                        await response.OutputStream.FlushAsync(_stop.Token);
                        await Task.Delay(200, _stop.Token);
                    }
                }
                catch (Exception e) when (e is IOException or HttpListenerException or ObjectDisposedException)
                {
                    ClientGone.TrySetResult();
                    throw;
                }
                break;
        }
        await body.CopyToAsync(response.OutputStream, _stop.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        _listener.Close();
        await _loop;
        _client.Dispose();
        _stop.Dispose();
    }
}
