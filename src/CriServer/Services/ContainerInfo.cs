using System.Buffers;
using System.Text;
using System.Text.Json;
using Berth.Runtime.Containers;

namespace Berth.CriServer.Services;

/// <summary>ContainerStatus' verbose info: the pid, the sandbox, and the OCI spec the container runs with.</summary>
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
