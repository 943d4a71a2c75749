using System.Text.Json.Serialization;

namespace Berth.Cli;

internal sealed record TerminalSizeMessage(ushort Width, ushort Height);

[JsonSerializable(typeof(TerminalSizeMessage))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
