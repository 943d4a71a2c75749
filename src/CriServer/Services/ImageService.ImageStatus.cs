using System.Buffers;
using System.Text;
using System.Text.Json;
using Berth.Cri.V1;
using Grpc.Core;

namespace Berth.CriServer.Services;

public sealed partial class ImageService
{
    public override async Task<ImageStatusResponse> ImageStatus(ImageStatusRequest request, ServerCallContext context)
    {
        var reference = RequireImage(request.Image, "image.image");
        // An absent image is an empty answer, not an error: kubelet asks before every pull.
        if (_images.Find(reference) is not { } image) return new ImageStatusResponse();

        var response = new ImageStatusResponse { Image = ImageMapper.ToProto(image, _pinned.Covers(image)) };
        if (request.Verbose)
        {
            var config = await _images.ReadConfigAsync(image, context.CancellationToken);
            response.Info.Add("info", VerboseInfo(image, config));
        }
        return response;
    }

    private string VerboseInfo(ImageStore.Images.ImageRecord image, byte[] config)
    {
        var buffer = new ArrayBufferWriter<byte>(config.Length + 512);
        using (var writer = new Utf8JsonWriter(buffer, StatusInfo.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("manifestDigest", image.ManifestDigest);
            writer.WriteString("manifestMediaType", image.ManifestMediaType);
            writer.WriteStartArray("chainIDs");
            foreach (var chainId in image.ChainIds) writer.WriteStringValue(chainId);
            writer.WriteEndArray();
            writer.WriteStartArray("lowerDirs");
            foreach (var dir in _images.LowerDirs(image)) writer.WriteStringValue(dir);
            writer.WriteEndArray();
            writer.WritePropertyName("imageSpec");
            writer.WriteRawValue(config, skipInputValidation: false);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
