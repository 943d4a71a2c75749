using Berth.ImageStore;
using Berth.Runtime.Checkpoints;

namespace Berth.CriServer.Hosting;

/// <summary>The image store's layer unpacker, lent to the runtime for checkpoint archives and rootfs diffs.</summary>
internal sealed class ImageStoreUnpacker : IArchiveUnpacker
{
    public async Task UnpackFileAsync(string archive, string directory, CancellationToken cancellationToken)
    {
        try
        {
            await ImageManager.UnpackArchiveAsync(archive, directory, cancellationToken);
        }
        catch (ImageFormatException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }

    public async Task UnpackAsync(Stream tar, string directory, CancellationToken cancellationToken)
    {
        try
        {
            await ImageManager.UnpackAsync(tar, directory, cancellationToken);
        }
        catch (ImageFormatException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }
}
