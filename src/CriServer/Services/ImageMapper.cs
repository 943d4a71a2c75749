using Berth.Cri.V1;
using Berth.ImageStore.Images;

namespace Berth.CriServer.Services;

/// <summary>Image records to CRI messages.</summary>
internal static class ImageMapper
{
    public static Image ToProto(ImageRecord record, bool pinned)
    {
        var image = new Image
        {
            Id = record.Id,
            Size = (ulong)record.Size,
            Pinned = pinned,
            Spec = new ImageSpec { Image = record.Id },
        };
        image.RepoTags.AddRange(record.RepoTags);
        image.RepoDigests.AddRange(record.RepoDigests);

        // The config's User is "user[:group]"; kubelet wants the user part as a uid or a name.
        var user = record.User ?? "";
        var colon = user.IndexOf(':', StringComparison.Ordinal);
        var userPart = colon < 0 ? user : user[..colon];
        if (long.TryParse(userPart, out var uid))
            image.Uid = new Int64Value { Value = uid };
        else if (userPart.Length > 0)
            image.Username = userPart;
        return image;
    }
}
