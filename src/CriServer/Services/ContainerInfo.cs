using System.Buffers;
using System.Text;
using System.Text.Json;
using Berth.Runtime.Containers;

namespace Berth.CriServer.Services;

/// <summary>ContainerStatus' verbose info: the pid, the sandbox, the rootfs layers, and the OCI spec the container runs with.</summary>
internal static class ContainerInfo
{
    public static string Verbose(ContainerRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer, StatusInfo.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("sandboxID", record.PodId);
            writer.WriteNumber("pid", record.State == ContainerState.Running || record.State == ContainerState.Created ? record.InitPid : 0);
            writer.WriteString("runtimeHandler", record.RuntimeHandler);
            writer.WriteString("bundle", record.Bundle);
            if (record.Shim is { } shim) writer.WriteNumber("shimPid", shim.Pid);
            // The node's mount table names the overlay's directories by the descriptors it was mounted through.
            writer.WriteStartObject("rootfs");
            writer.WriteString("type", "overlay");
            writer.WriteStartArray("lowerDirs");
            foreach (var lower in record.LowerDirs) writer.WriteStringValue(lower);
            writer.WriteEndArray();
            writer.WriteString("upperDir", ContainerManager.WritableLayerOf(record));
            writer.WriteString("workDir", ContainerManager.WorkDirectoryOf(record));
            writer.WriteEndObject();
            var spec = Path.Combine(record.Bundle, "config.json");
            if (File.Exists(spec))
            {
                writer.WritePropertyName("runtimeSpec");
                using var document = JsonDocument.Parse(File.ReadAllBytes(spec));
                document.WriteTo(writer);
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
