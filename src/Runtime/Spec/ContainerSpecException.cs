namespace Berth.Runtime.Spec;

/// <summary>The request cannot become a container; the message names the CRI field at fault (InvalidArgument).</summary>
public sealed class ContainerSpecException(string message) : Exception(message);
