using System.CommandLine;
using System.Globalization;
using Berth.Cri.V1;

namespace Berth.Cli.Commands;

/// <summary><c>berth images</c>, <c>berth pull</c>, <c>berth rmi</c> over CRI's ImageService, and <c>berth image</c>.</summary>
internal static class ImageCommands
{
    public static IEnumerable<Command> Create(GlobalOptions global)
    {
        yield return List(global);
        yield return Pull(global);
        yield return Remove(global);
        yield return ImageTransfer.Create(global);
    }

    private static Command List(GlobalOptions global)
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "print only the image IDs" };
        var command = new Command("images", "list images") { quiet };
        global.SetAction(command, async (result, cri, cancellationToken) =>
        {
            var images = (await cri.Images.ListImagesAsync(new ListImagesRequest(), deadline: cri.Deadline, cancellationToken: cancellationToken)).Images;
            if (result.GetValue(quiet))
            {
                foreach (var image in images) Console.Out.WriteLine(image.Id);
                return 0;
            }
            var table = new Table("IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE");
            foreach (var image in images)
            {
                var digest = image.RepoDigests.FirstOrDefault() is { } repoDigest ? Hex(repoDigest[(repoDigest.IndexOf('@', StringComparison.Ordinal) + 1)..]) : "<none>";
                var id = Hex(image.Id);
                var size = Size(image.Size);
                if (image.RepoTags.Count == 0) table.Add(image.RepoDigests.FirstOrDefault()?.Split('@')[0] ?? "<none>", "<none>", digest, id, size);
                foreach (var tag in image.RepoTags)
                {
                    var colon = tag.LastIndexOf(':');
                    table.Add(tag[..colon], tag[(colon + 1)..], digest, id, size);
                }
            }
            table.WriteTo(Console.Out);
            return 0;
        });
        return command;
    }

    private static Command Pull(GlobalOptions global)
    {
        var image = new Argument<string>("image") { Description = "image reference, e.g. docker.io/library/busybox:1.36" };
        var creds = new Option<string?>("--creds") { Description = "registry credentials as USER[:PASSWORD]" };
        var command = new Command("pull", "pull an image") { image, creds };
        global.SetAction(command, async (result, cri, cancellationToken) =>
        {
            var request = new PullImageRequest { Image = new ImageSpec { Image = result.GetValue(image)! } };
            if (result.GetValue(creds) is { } credentials)
            {
                var colon = credentials.IndexOf(':', StringComparison.Ordinal);
                request.Auth = new AuthConfig { Username = colon < 0 ? credentials : credentials[..colon], Password = colon < 0 ? "" : credentials[(colon + 1)..] };
            }
            var reference = await PullWithProgressAsync(cri, request, cancellationToken);
            Console.Out.WriteLine($"Image is up to date for {reference}");
            return 0;
        });
        return command;
    }

    /// <summary>PullImage, with its progress per layer drawn meanwhile.</summary>
    internal static Task<string> PullWithProgressAsync(CriConnection cri, PullImageRequest request, CancellationToken cancellationToken) =>
        PullProgressView.PullAsync(cri, request, cancellationToken);

    private static Command Remove(GlobalOptions global)
    {
        var images = new Argument<string[]>("image") { Description = "image IDs, ID prefixes, tags or digests", Arity = ArgumentArity.OneOrMore };
        var command = new Command("rmi", "remove images") { images };
        global.SetAction(command, async (result, cri, cancellationToken) =>
        {
            var known = (await cri.Images.ListImagesAsync(new ListImagesRequest(), deadline: cri.Deadline, cancellationToken: cancellationToken)).Images;
            var failed = false;
            foreach (var reference in result.GetValue(images)!)
            {
                var matches = known.Where(i => i.Id == reference || Hex(i.Id).StartsWith(reference, StringComparison.Ordinal)
                                               || i.RepoTags.Contains(reference) || i.RepoDigests.Contains(reference)).ToList();
                if (matches.Count != 1)
                {
                    await Console.Error.WriteLineAsync(matches.Count == 0 ? $"berth: no image matches '{reference}'" : $"berth: '{reference}' matches {matches.Count} images");
                    failed = true;
                    continue;
                }
                await cri.Images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = matches[0].Id } }, deadline: cri.Deadline, cancellationToken: cancellationToken);
                Console.Out.WriteLine($"Deleted: {string.Join(", ", matches[0].RepoTags.DefaultIfEmpty(matches[0].Id))}");
            }
            return failed ? 1 : 0;
        });
        return command;
    }

    private static string Hex(string digest) => (digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest[7..] : digest) is var hex && hex.Length > 13 ? hex[..13] : digest;

    internal static string Size(ulong bytes) => bytes switch
    {
        >= 1UL << 30 => (bytes / (double)(1UL << 30)).ToString("0.##", CultureInfo.InvariantCulture) + "GB",
        >= 1UL << 20 => (bytes / (double)(1UL << 20)).ToString("0.##", CultureInfo.InvariantCulture) + "MB",
        >= 1UL << 10 => (bytes / (double)(1UL << 10)).ToString("0.##", CultureInfo.InvariantCulture) + "kB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + "B",
    };
}
