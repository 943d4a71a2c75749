using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Berth.Streaming.RemoteCommand;

/// <summary>Names and formats of Kubernetes' remotecommand protocol (k8s.io/apimachinery/pkg/util/remotecommand).</summary>
public static class RemoteCommandProtocol
{
    public const string V1 = "channel.k8s.io";
    public const string V2 = "v2.channel.k8s.io";
    public const string V3 = "v3.channel.k8s.io";
    public const string V4 = "v4.channel.k8s.io";
    public const string V5 = "v5.channel.k8s.io";

    /// <summary>The WebSocket variants for clients that can only send text (browsers): a channel digit, then base64.</summary>
    public const string Base64V1 = "base64.channel.k8s.io";
    public const string Base64V4 = "v4.base64.channel.k8s.io";

    /// <summary>SPDY subprotocols, best first.</summary>
    public static readonly string[] SpdyProtocols = [V4, V3, V2, V1];

    /// <summary>WebSocket subprotocols, best first ("" is a client that asked for none).</summary>
    public static readonly string[] WebSocketProtocols = [V5, V4, Base64V4, V1, Base64V1];

    /// <summary>WebSocket subprotocols of port-forward (the v4 framing, binary or base64).</summary>
    public static readonly string[] WebSocketPortForwardProtocols = [V4, Base64V4];

    /// <summary>Whether a WebSocket protocol carries text messages: the channel as an ASCII digit, the data in base64.</summary>
    public static bool IsBase64(string protocol) => protocol is Base64V1 or Base64V4;

    public const string StreamTypeHeader = "streamType";
    public const string StreamError = "error";
    public const string StreamStdin = "stdin";
    public const string StreamStdout = "stdout";
    public const string StreamStderr = "stderr";
    public const string StreamResize = "resize";

    public const byte StdinChannel = 0;
    public const byte StdoutChannel = 1;
    public const byte StderrChannel = 2;
    public const byte ErrorChannel = 3;
    public const byte ResizeChannel = 4;

    /// <summary>Whether a negotiated protocol reports the outcome as a JSON Status (v4 and v5) rather than bare text.</summary>
    public static bool UsesStatusJson(string protocol) => protocol is V4 or V5 or Base64V4;

    /// <summary>Whether a SPDY protocol has a resize stream (v3 and later).</summary>
    public static bool HasResizeStream(string protocol) => protocol is V3 or V4;

    /// <summary>
    /// The error stream's content for an outcome: a metav1.Status in JSON for v4/v5; for older versions only the failure
    /// message, and nothing on success. <paramref name="exitCode"/> null with no failure means success (attach).
    /// </summary>
    public static byte[] Outcome(string protocol, int? exitCode, string? failure)
    {
        var failed = failure is not null || exitCode is not (null or 0);
        var message = failure is not null
            ? $"Internal error occurred: {failure}"
            : $"command terminated with non-zero exit code: exit status {exitCode}";
        if (!UsesStatusJson(protocol)) return failed ? Encoding.UTF8.GetBytes(message) : [];
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteEndObject();
            json.WriteString("status", failed ? "Failure" : "Success");
            if (failed)
            {
                json.WriteString("message", message);
                json.WriteString("reason", failure is not null ? "InternalError" : "NonZeroExitCode");
                json.WriteStartObject("details");
                json.WriteStartArray("causes");
                json.WriteStartObject();
                if (failure is null) json.WriteString("reason", "ExitCode");
                json.WriteString("message", failure ?? exitCode!.Value.ToString(CultureInfo.InvariantCulture));
                json.WriteEndObject();
                json.WriteEndArray();
                json.WriteEndObject();
                if (failure is not null) json.WriteNumber("code", 500);
            }
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// The client's reading of <see cref="Outcome"/> in its v4/v5 form: the exit code (0 on Success, the ExitCode cause
    /// on NonZeroExitCode), or null with the failure's message when the command did not run to an exit.
    /// </summary>
    public static int? ExitCodeOf(ReadOnlySpan<byte> status, out string? failure)
    {
        failure = null;
        if (status.IsEmpty) return 0;
        var reader = new Utf8JsonReader(status);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        if (root.TryGetProperty("status", out var outcome) && outcome.GetString() == "Success") return 0;
        if (root.TryGetProperty("details", out var details) && details.TryGetProperty("causes", out var causes))
        {
            foreach (var cause in causes.EnumerateArray())
            {
                if (cause.TryGetProperty("reason", out var reason) && reason.GetString() == "ExitCode"
                    && int.TryParse(cause.GetProperty("message").GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var code)) return code;
            }
        }
        failure = root.TryGetProperty("message", out var message) ? message.GetString() : "the command failed";
        return null;
    }

    /// <summary>
    /// Reads the resize stream: a sequence of JSON objects <c>{"Width":W,"Height":H}</c> (Go's encoder separates them
    /// with newlines; nothing else is assumed). Ends when the stream does; malformed input ends it too.
    /// </summary>
    public static async Task ReadResizesAsync(Stream stream, ChannelWriter<TerminalSize> sizes, CancellationToken cancellationToken)
    {
        var pending = new ArrayBufferWriter<byte>(256);
        var buffer = new byte[1024];
        try
        {
            while (true)
            {
                var read = await stream.ReadAsync(buffer, cancellationToken);
                if (read == 0) break;
                pending.Write(buffer.AsSpan(0, read));
                if (pending.WrittenCount > 64 * 1024) break;
                var consumed = 0;
                while (TryParseSize(pending.WrittenSpan[consumed..], out var size, out var length))
                {
                    consumed += length;
                    if (size is { } value) await sizes.WriteAsync(value, cancellationToken);
                }
                if (consumed > 0)
                {
                    var rest = pending.WrittenSpan[consumed..].ToArray();
                    pending.ResetWrittenCount();
                    pending.Write(rest);
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or JsonException)
        {
        }
        finally
        {
            sizes.TryComplete();
        }
    }

    /// <summary>Parses one complete JSON value at the start of <paramref name="data"/>, skipping leading whitespace.</summary>
    internal static bool TryParseSize(ReadOnlySpan<byte> data, out TerminalSize? size, out int consumed)
    {
        size = null;
        consumed = 0;
        var reader = new Utf8JsonReader(data, isFinalBlock: false, state: default);
        {
            if (!reader.Read()) return false;
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                if (!reader.TrySkip()) return false;
                consumed = (int)reader.BytesConsumed;
                return true;
            }
            int width = 0, height = 0;
            while (true)
            {
                if (!reader.Read()) return false;
                if (reader.TokenType == JsonTokenType.EndObject) break;
                var name = reader.GetString();
                if (!reader.Read()) return false;
                if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var number))
                {
                    if (string.Equals(name, "Width", StringComparison.OrdinalIgnoreCase)) width = number;
                    else if (string.Equals(name, "Height", StringComparison.OrdinalIgnoreCase)) height = number;
                }
                else if (!reader.TrySkip())
                {
                    return false;
                }
            }
            consumed = (int)reader.BytesConsumed;
            if (width is > 0 and <= ushort.MaxValue && height is > 0 and <= ushort.MaxValue) size = new TerminalSize((ushort)width, (ushort)height);
            return true;
        }
    }
}
