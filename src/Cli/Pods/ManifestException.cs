namespace Berth.Cli.Pods;

/// <summary>A manifest berth play can't run as written; the message names the document and the field.</summary>
internal sealed class ManifestException(string message) : Exception(message);
