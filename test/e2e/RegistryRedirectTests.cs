using System.Net;
using Berth.Cri.V1;
using Berth.E2E.Tests.Fixtures;

namespace Berth.E2E.Tests;

/// <summary>
/// Registries such as Docker Hub answer blob requests with a redirect to storage on another host.
/// A front on 127.0.0.1 proxies manifests to the registry and redirects blobs to it, demanding a
/// credential of its own that must never reach the storage host.
/// </summary>
public sealed class RegistryRedirectTests
{
    [Fact]
    public async Task Blob_redirects_are_followed_without_carrying_credentials()
    {
        await using var bed = await ImageTestBed.StartAsync();
        var image = new TestImageBuilder().Layer(TestLayers.Base()).Build();
        await bed.Pusher.PushAsync("berth/redirected", image, "1");

        using var front = new RedirectingFront(bed.Registry);
        var pulled = await bed.Daemon.Images.PullImageAsync(new PullImageRequest
        {
            Image = new ImageSpec { Image = $"127.0.0.1:{front.Port}/berth/redirected:1" },
            Auth = new AuthConfig { Username = "front-user", Password = "front-pass" },
        });

        Assert.Equal(image.Id, pulled.ImageRef);
        Assert.True(front.Redirects >= 2, $"{front.Redirects} redirects"); // config and layer
        Assert.Equal(front.Redirects, front.StorageRequests);
        Assert.Equal(0, front.StorageRequestsWithCredentials);
    }

    /// <summary>The front (port <see cref="Port"/>) and a "storage" host on another port that the blobs are redirected to.</summary>
    private sealed class RedirectingFront : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly HttpListener _storage = new();
        private readonly HttpClient _upstream;
        private readonly int _storagePort;
        private int _redirects;
        private int _storageRequests;
        private int _storageRequestsWithCredentials;

        public RedirectingFront(RegistryServer registry)
        {
            _upstream = registry.CreateHttpClient();
            Port = RegistryServer.FreePort();
            _storagePort = RegistryServer.FreePort();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            _storage.Prefixes.Add($"http://127.0.0.1:{_storagePort}/");
            _listener.Start();
            _storage.Start();
            _ = Task.Run(() => ServeAsync(_listener, HandleFrontAsync));
            _ = Task.Run(() => ServeAsync(_storage, HandleStorageAsync));
        }

        public int Port { get; }
        public int Redirects => Volatile.Read(ref _redirects);
        public int StorageRequests => Volatile.Read(ref _storageRequests);
        public int StorageRequestsWithCredentials => Volatile.Read(ref _storageRequestsWithCredentials);

        private static async Task ServeAsync(HttpListener listener, Func<HttpListenerContext, Task> handle)
        {
            while (listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await listener.GetContextAsync();
                }
                catch (Exception) when (!listener.IsListening)
                {
                    return;
                }
                catch (HttpListenerException)
                {
                    return;
                }
                try
                {
                    await handle(context);
                }
                finally
                {
                    context.Response.Close();
                }
            }
        }

        private async Task HandleStorageAsync(HttpListenerContext context)
        {
            Interlocked.Increment(ref _storageRequests);
            if (context.Request.Headers["Authorization"] is not null) Interlocked.Increment(ref _storageRequestsWithCredentials);
            await ProxyAsync(context, context.Request.Url!.PathAndQuery);
        }

        private async Task HandleFrontAsync(HttpListenerContext context)
        {
            var path = context.Request.Url!.PathAndQuery;
            if (context.Request.Headers["Authorization"] is null)
            {
                context.Response.StatusCode = 401;
                context.Response.AddHeader("WWW-Authenticate", "Basic realm=\"front\"");
                return;
            }
            if (path.Contains("/blobs/", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _redirects);
                context.Response.StatusCode = 307;
                context.Response.RedirectLocation = $"http://127.0.0.1:{_storagePort}{path}";
                return;
            }
            await ProxyAsync(context, path);
        }

        private async Task ProxyAsync(HttpListenerContext context, string path)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path.TrimStart('/'));
            request.Headers.TryAddWithoutValidation("Accept", context.Request.Headers["Accept"]);
            using var response = await _upstream.SendAsync(request);
            context.Response.StatusCode = (int)response.StatusCode;
            context.Response.ContentType = response.Content.Headers.ContentType?.ToString();
            var body = await response.Content.ReadAsByteArrayAsync();
            await context.Response.OutputStream.WriteAsync(body);
        }

        public void Dispose()
        {
            _listener.Close();
            _storage.Close();
            _upstream.Dispose();
        }
    }
}
