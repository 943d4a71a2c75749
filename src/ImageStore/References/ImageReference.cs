using System.Diagnostics.CodeAnalysis;
using Berth.ImageStore.Content;

namespace Berth.ImageStore.References;

/// <summary>
/// A normalized image reference, as kubelet and crictl expect them:
/// <c>busybox</c> is <c>docker.io/library/busybox:latest</c>; a digest may stand with or without a tag.
/// </summary>
public sealed record ImageReference
{
    public const string DockerHub = "docker.io";
    private const int MaxTagLength = 128;

    private ImageReference(string registry, string repository, string? tag, Digest? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>The registry host (and port), e.g. <c>docker.io</c> or <c>127.0.0.1:5000</c>.</summary>
    public string Registry { get; }

    /// <summary>The repository path inside the registry, e.g. <c>library/busybox</c>.</summary>
    public string Repository { get; }

    public string? Tag { get; }

    public Digest? Digest { get; }

    /// <summary><c>registry/repository</c>, the name that repo tags and repo digests start with.</summary>
    public string Name => $"{Registry}/{Repository}";

    /// <summary>The tag form, <c>name:tag</c>, or null for a digest-only reference.</summary>
    public string? RepoTag => Tag is null ? null : $"{Name}:{Tag}";

    public string? RepoDigest => Digest is null ? null : $"{Name}@{Digest}";

    public override string ToString() =>
        Name + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest);

    public static ImageReference Parse(string text) =>
        TryParse(text, out var reference, out var error) ? reference : throw new FormatException(error);

    public static bool TryParse(string text, [NotNullWhen(true)] out ImageReference? reference, [NotNullWhen(false)] out string? error)
    {
        reference = null;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "the image reference is empty";
            return false;
        }

        var remainder = text;
        Digest? digest = null;
        var at = remainder.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            if (!Content.Digest.TryParse(remainder[(at + 1)..], out var parsed))
            {
                error = $"'{text}': '{remainder[(at + 1)..]}' is not a sha256 digest";
                return false;
            }
            digest = parsed;
            remainder = remainder[..at];
        }

        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a registry port).
        string? tag = null;
        var lastSlash = remainder.LastIndexOf('/');
        var colon = remainder.LastIndexOf(':');
        if (colon > lastSlash)
        {
            tag = remainder[(colon + 1)..];
            remainder = remainder[..colon];
            if (!IsValidTag(tag))
            {
                error = $"'{text}': '{tag}' is not a valid tag";
                return false;
            }
        }

        string registry;
        string repository;
        var firstSlash = remainder.IndexOf('/', StringComparison.Ordinal);
        var first = firstSlash < 0 ? remainder : remainder[..firstSlash];
        if (firstSlash > 0 && (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost"))
        {
            registry = first;
            repository = remainder[(firstSlash + 1)..];
        }
        else
        {
            registry = DockerHub;
            repository = remainder;
        }
        if (registry is "index.docker.io" or "registry-1.docker.io") registry = DockerHub;
        if (registry == DockerHub && !repository.Contains('/', StringComparison.Ordinal)) repository = "library/" + repository;

        if (!IsValidRegistry(registry))
        {
            error = $"'{text}': '{registry}' is not a valid registry host";
            return false;
        }
        if (!IsValidRepository(repository))
        {
            error = $"'{text}': '{repository}' is not a valid repository name (lowercase letters, digits and separators . _ __ - /)";
            return false;
        }

        if (tag is null && digest is null) tag = "latest";
        reference = new ImageReference(registry, repository, tag, digest);
        return true;
    }

    private static bool IsValidTag(string tag)
    {
        if (tag.Length is 0 or > MaxTagLength) return false;
        if (!(char.IsAsciiLetterOrDigit(tag[0]) || tag[0] == '_')) return false;
        foreach (var c in tag)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')) return false;
        }
        return true;
    }

    // host[:port], where a port is digits only (so "busybox:tag/x" is no registry).
    private static bool IsValidRegistry(string registry)
    {
        var host = registry;
        var colon = registry.LastIndexOf(':');
        if (colon >= 0 && !registry.EndsWith(']'))
        {
            var port = registry.AsSpan(colon + 1);
            if (port.IsEmpty || port.Length > 5 || !int.TryParse(port, out _) || port.ContainsAnyExceptInRange('0', '9')) return false;
            host = registry[..colon];
        }
        if (host.Length == 0) return false;
        foreach (var c in host)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '[' or ']' or ':')) return false;
        }
        return true;
    }

    // path-component: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*, components joined by '/'.
    private static bool IsValidRepository(string repository)
    {
        if (repository.Length is 0 or > 255) return false;
        foreach (var component in repository.Split('/'))
        {
            var i = 0;
            while (true)
            {
                var alnumStart = i;
                while (i < component.Length && (char.IsAsciiLetterLower(component[i]) || char.IsAsciiDigit(component[i]))) i++;
                if (i == alnumStart) return false; // empty component, or a separator not between alphanumerics
                if (i == component.Length) break;
                var separatorStart = i;
                var c = component[i];
                while (i < component.Length && component[i] == c && c is '.' or '_' or '-') i++;
                var length = i - separatorStart;
                var valid = c switch { '.' => length == 1, '_' => length <= 2, '-' => length >= 1, _ => false };
                if (!valid) return false;
            }
        }
        return true;
    }
}
