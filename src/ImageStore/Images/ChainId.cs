using System.Text;
using Berth.ImageStore.Content;

namespace Berth.ImageStore.Images;

/// <summary>OCI chain IDs: a layer's identity together with everything beneath it (image-spec config.md).</summary>
public static class ChainId
{
    public static IReadOnlyList<Digest> Compute(IReadOnlyList<Digest> diffIds)
    {
        var chain = new List<Digest>(diffIds.Count);
        for (var i = 0; i < diffIds.Count; i++)
        {
            chain.Add(i == 0 ? diffIds[0] : Digest.Compute(Encoding.ASCII.GetBytes($"{chain[i - 1]} {diffIds[i]}")));
        }
        return chain;
    }
}
