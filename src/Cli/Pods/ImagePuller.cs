using Berth.Cli.Commands;
using Berth.Cri.V1;

namespace Berth.Cli.Pods;

/// <summary>Images by imagePullPolicy, as the kubelet's image manager applies it, once per reference per play.</summary>
internal sealed class ImagePuller(CriConnection cri)
{
    private readonly Dictionary<string, Image> _pulled = [];

    /// <summary>The policy the API server would default: Always for <c>:latest</c> or no tag, else IfNotPresent.</summary>
    public static string DefaultPolicy(string reference)
    {
        if (reference.Contains('@', StringComparison.Ordinal)) return "IfNotPresent";
        var lastSlash = reference.LastIndexOf('/');
        var colon = reference.IndexOf(':', lastSlash + 1);
        return colon < 0 || reference[(colon + 1)..] == "latest" ? "Always" : "IfNotPresent";
    }

    public async Task<Image> EnsureAsync(string reference, string? policy, string field, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(reference)) throw new ManifestException($"{field}: an image is required");
        if (_pulled.TryGetValue(reference, out var known)) return known;
        policy = string.IsNullOrEmpty(policy) ? DefaultPolicy(reference) : policy;
        var spec = new ImageSpec { Image = reference };
        var present = (await cri.Images.ImageStatusAsync(new ImageStatusRequest { Image = spec }, deadline: cri.Deadline, cancellationToken: cancellationToken)).Image;
        switch (policy)
        {
            case "Never" when present is null:
                throw new ManifestException($"{field}: image {reference} is not on the node and the pull policy is Never (ErrImageNeverPull)");
            case "Never":
            case "IfNotPresent" when present is not null:
                break;
            case "IfNotPresent" or "Always":
                await ImageCommands.PullWithProgressAsync(cri, new PullImageRequest { Image = spec }, cancellationToken);
                present = (await cri.Images.ImageStatusAsync(new ImageStatusRequest { Image = spec }, deadline: cri.Deadline, cancellationToken: cancellationToken)).Image
                          ?? throw new CliException($"{field}: image {reference} was pulled but the runtime does not know it");
                break;
            default:
                throw new ManifestException($"{field}: pull policy '{policy}' is not Always, IfNotPresent or Never");
        }
        _pulled[reference] = present!;
        return present!;
    }
}
