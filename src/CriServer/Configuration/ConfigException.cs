namespace Berth.CriServer.Configuration;

/// <summary>A configuration problem that stops startup; the message names the key, flag or path.</summary>
public sealed class ConfigException(string message) : Exception(message);
