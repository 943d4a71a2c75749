namespace Berth.Nri.Transport;

/// <summary>gRPC status codes as ttrpc carries them in a Response's status (google.rpc.Code).</summary>
public enum RpcCode
{
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// <summary>A call answered with a non-OK status, or one the transport could not complete (closed, timed out, garbled).</summary>
public sealed class TtrpcException(RpcCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    public RpcCode Code { get; } = code;

    /// <summary>The connection cannot carry more calls: closed, or the peer broke the protocol or did not answer in time.</summary>
    public bool IsFatal => Code is RpcCode.Unavailable or RpcCode.DeadlineExceeded or RpcCode.DataLoss;
}
