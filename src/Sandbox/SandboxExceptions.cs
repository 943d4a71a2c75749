namespace Berth.Sandbox;

/// <summary>Base of the sandbox component's errors; CriServer maps each kind to a gRPC status.</summary>
public abstract class SandboxException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The request is malformed; the message names the field.</summary>
public sealed class SandboxRequestException(string message) : SandboxException(message);

/// <summary>A sandbox with the same name (name, namespace, uid, attempt) exists.</summary>
public sealed class SandboxExistsException(string message) : SandboxException(message);

public sealed class SandboxNotFoundException(string message) : SandboxException(message);

/// <summary>A step of setting a sandbox up failed; everything it had made was undone.</summary>
public sealed class SandboxSetupException(string message, Exception? inner = null) : SandboxException(message, inner);

/// <summary>The sandbox exists but is not in a state that allows the operation.</summary>
public sealed class SandboxStateException(string message) : SandboxException(message);
