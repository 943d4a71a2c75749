namespace Berth.Cni;

/// <summary>A CNI failure: no usable config, a plugin that is missing, or a plugin's error object (spec "Error").</summary>
public sealed class CniException(string message, int code = 0) : Exception(message)
{
    /// <summary>The plugin's error code (1–99 are the spec's well-known codes), or 0 when no plugin reported one.</summary>
    public int Code { get; } = code;
}
