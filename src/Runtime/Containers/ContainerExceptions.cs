namespace Berth.Runtime.Containers;

/// <summary>A failure CriServer maps to a gRPC status; the message names the field or the container.</summary>
public abstract class ContainerException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>InvalidArgument: the request is wrong.</summary>
public sealed class ContainerRequestException(string message) : ContainerException(message);

/// <summary>AlreadyExists: the name is taken.</summary>
public sealed class ContainerExistsException(string message) : ContainerException(message);

/// <summary>NotFound: no container with that ID.</summary>
public sealed class ContainerNotFoundException(string id) : ContainerException($"container {id} not found");

/// <summary>FailedPrecondition: the container is not in a state that allows it.</summary>
public sealed class ContainerStateException(string message) : ContainerException(message);

/// <summary>FailedPrecondition: the node cannot give what the request asks (a CDI device's host node, a feature its runtime lacks).</summary>
public sealed class ContainerPreconditionException(string message) : ContainerException(message);

/// <summary>DeadlineExceeded: the operation took longer than the caller allowed (a checkpoint's timeout), and was undone.</summary>
public sealed class ContainerTimeoutException(string message) : ContainerException(message);

/// <summary>ResourceExhausted: a bound on what one container may hold in berthd was reached.</summary>
public sealed class ContainerLimitException(string message) : ContainerException(message);

/// <summary>Internal: the host or the OCI runtime failed.</summary>
public sealed class ContainerRuntimeException(string message, Exception? inner = null) : ContainerException(message, inner);
