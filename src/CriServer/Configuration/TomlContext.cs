using Tomlyn.Model;
using Tomlyn.Serialization;

namespace Berth.CriServer.Configuration;

// The config is read as an untyped table and bound by hand (TomlSection), which lets every
// error name its key; the source-generated context keeps that parse AOT-safe.
[TomlSerializable(typeof(TomlTable))]
internal sealed partial class TomlContext : TomlSerializerContext;
