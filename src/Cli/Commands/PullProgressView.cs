using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.Cli.Commands;

/// <summary>
/// A pull's progress per layer, read from berthd's Status(verbose) <c>pulls</c> entry while the PullImage call runs
/// (CRI's PullImage itself reports nothing until it is done). On a terminal: a line per layer with bytes, rate and
/// ETA, redrawn in place; otherwise plain lines, one when a layer starts and one when it is done.
/// </summary>
internal sealed class PullProgressView(string image, bool terminal, TextWriter output)
{
    private sealed class Layer(string digest, long size)
    {
        public string Digest { get; } = digest;
        public long Size { get; } = size;
        public long Done { get; set; }
        public double Rate { get; set; }
        public long LastDone { get; set; }
        public TimeSpan LastSeen { get; set; }
        public bool Announced { get; set; }
        public bool Finished { get; set; }
    }

    private readonly List<Layer> _layers = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _drawn;

    public static async Task<string> PullAsync(CriConnection cri, PullImageRequest request, CancellationToken cancellationToken)
    {
        var name = request.Image.Image;
        var view = new PullProgressView(name, !Console.IsOutputRedirected, Console.Out);
        Console.Out.WriteLine($"pulling {name}");
        var pull = cri.Images.PullImageAsync(request, cancellationToken: cancellationToken).ResponseAsync;
        while (!pull.IsCompleted)
        {
            await Task.WhenAny(pull, Task.Delay(250, cancellationToken));
            if (!pull.IsCompleted && await SampleAsync(cri, name, cancellationToken) is { } layers) view.Update(layers);
        }
        var response = await pull;
        view.Finish();
        return response.ImageRef;
    }

    /// <summary>This image's entry in Status(verbose).info["pulls"], or null when berthd has none (yet, or no more).</summary>
    private static async Task<List<(string Digest, long Size, long Done)>?> SampleAsync(CriConnection cri, string image, CancellationToken cancellationToken)
    {
        StatusResponse status;
        try
        {
            status = await cri.Runtime.StatusAsync(new StatusRequest { Verbose = true }, deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken);
        }
        catch (RpcException)
        {
            return null;
        }
        if (!status.Info.TryGetValue("pulls", out var json)) return null;
        using var document = JsonDocument.Parse(json);
        var wanted = Normalize(image);
        foreach (var pull in document.RootElement.EnumerateArray())
        {
            if (pull.GetProperty("image").GetString() != wanted) continue;
            return pull.GetProperty("layers").EnumerateArray()
                .Select(l => (l.GetProperty("digest").GetString()!, l.GetProperty("size").GetInt64(), l.GetProperty("done").GetInt64())).ToList();
        }
        return null;
    }

    /// <summary>Docker's short names as the runtime normalizes them: <c>busybox</c> is <c>docker.io/library/busybox:latest</c>.</summary>
    internal static string Normalize(string image)
    {
        var slash = image.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? "" : image[..slash];
        var named = slash < 0 ? $"docker.io/library/{image}"
            : first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost" ? image
            : $"docker.io/{image}";
        var lastPart = named[(named.LastIndexOf('/') + 1)..];
        return lastPart.Contains(':', StringComparison.Ordinal) || named.Contains('@', StringComparison.Ordinal) ? named : named + ":latest";
    }

    private void Update(List<(string Digest, long Size, long Done)> sample)
    {
        var now = _clock.Elapsed;
        foreach (var (digest, size, done) in sample)
        {
            var layer = _layers.FirstOrDefault(l => l.Digest == digest);
            if (layer is null) _layers.Add(layer = new Layer(digest, size) { LastSeen = now });
            var seconds = (now - layer.LastSeen).TotalSeconds;
            if (seconds > 0) layer.Rate = 0.5 * layer.Rate + 0.5 * (done - layer.LastDone) / seconds;
            layer.LastDone = done;
            layer.LastSeen = now;
            layer.Done = done;
        }
        if (terminal) Draw();
        else Report();
    }

    private void Finish()
    {
        foreach (var layer in _layers) layer.Done = layer.Size;
        if (terminal) Draw();
        else Report();
        output.WriteLine($"pulled {image} in {_clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s");
    }

    private void Report()
    {
        foreach (var layer in _layers)
        {
            if (!layer.Announced && layer.Done < layer.Size)
            {
                output.WriteLine($"layer {Short(layer.Digest)}: {ImageCommands.Size((ulong)layer.Done)} of {ImageCommands.Size((ulong)layer.Size)}");
                layer.Announced = true;
            }
            if (!layer.Finished && layer.Done >= layer.Size)
            {
                output.WriteLine($"layer {Short(layer.Digest)}: done, {ImageCommands.Size((ulong)layer.Size)}");
                layer.Finished = true;
            }
        }
    }

    private void Draw()
    {
        if (_drawn > 0) output.Write($"\u001b[{_drawn}A");
        foreach (var layer in _layers)
        {
            var fraction = layer.Size == 0 ? 1 : Math.Clamp((double)layer.Done / layer.Size, 0, 1);
            var bar = new string('=', (int)(fraction * 20)).PadRight(20);
            var eta = Eta(layer.Size - layer.Done, layer.Rate);
            output.WriteLine($"\r\u001b[K{Short(layer.Digest)} [{bar}] {ImageCommands.Size((ulong)layer.Done)}/{ImageCommands.Size((ulong)layer.Size)} {ImageCommands.Size((ulong)Math.Max(0, layer.Rate))}/s {eta}");
        }
        _drawn = _layers.Count;
        output.Flush();
    }

    /// <summary>
    /// "done", the time left at this rate, or nothing while the layer makes no progress: the rate of a stalled layer
    /// decays towards zero, and the time left at a rate near zero is past what a TimeSpan holds.
    /// </summary>
    internal static string Eta(long remaining, double rate)
    {
        if (remaining <= 0) return "done";
        if (rate < 1) return "";
        var seconds = remaining / rate;
        if (seconds >= 100 * 3600) return "ETA >99h";
        var left = TimeSpan.FromSeconds(Math.Ceiling(seconds));
        return left.TotalHours >= 1 ? $"ETA {(int)left.TotalHours}:{left:mm\\:ss}" : $"ETA {left:mm\\:ss}";
    }

    private static string Short(string digest) => digest.Length > 19 ? digest[..19] : digest;
}
