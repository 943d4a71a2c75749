using Berth.ImageStore.Images;

namespace Berth.ImageStore.References;

/// <summary>
/// The images configured as pinned (CRI-O's <c>pinned_images</c>), which CRI reports with <c>pinned</c> so that
/// kubelet's image garbage collection leaves them. An entry is an image name, normalized as pulls normalize it
/// ("pause:3.10" is docker.io/library/pause:3.10), or a name prefix ending in <c>*</c>.
/// </summary>
public sealed class PinnedImages
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly List<string> _prefixes = [];

    /// <exception cref="ArgumentException">An entry is neither an image name nor a prefix ending in <c>*</c>; the message names it.</exception>
    public PinnedImages(IEnumerable<string> entries)
    {
        foreach (var entry in entries)
        {
            if (entry.EndsWith('*') && entry.Length > 1) _prefixes.Add(entry[..^1]);
            else if (ImageReference.TryParse(entry, out var reference, out var error)) _names.Add(reference.RepoDigest ?? reference.RepoTag ?? reference.Name);
            else throw new ArgumentException($"'{entry}' is not an image name or a prefix ending in '*': {error}");
        }
    }

    public bool Covers(ImageRecord image) =>
        (_names.Count > 0 || _prefixes.Count > 0)
        && image.RepoTags.Concat(image.RepoDigests).Any(name => _names.Contains(name) || _prefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal)));
}
