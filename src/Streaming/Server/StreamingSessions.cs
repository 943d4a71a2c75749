using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Berth.Streaming.Server;

/// <summary>What a token stands for: a remote command (exec or attach) or a port-forward.</summary>
public abstract record StreamingSession(string Kind)
{
    public const string ExecKind = "exec";
    public const string AttachKind = "attach";
    public const string PortForwardKind = "portforward";
}

public sealed record RemoteCommandSession(string Kind, IRemoteCommand Command) : StreamingSession(Kind);

public sealed record PortForwardSession(IPortForward Target) : StreamingSession(PortForwardKind);

/// <summary>Too many URLs are outstanding; the caller should fail the RPC as resource-exhausted.</summary>
public sealed class StreamingCapacityException(string message) : Exception(message);

/// <summary>
/// Single-use, expiring tokens for validated streaming requests. A token is 128 random bits in URL-safe base64; it
/// is removed when used, so a replay finds nothing.
/// </summary>
public sealed class StreamingSessions(StreamingOptions options, TimeProvider? time = null)
{
    private readonly ConcurrentDictionary<string, (StreamingSession Request, DateTimeOffset Expires)> _pending = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public int Outstanding => _pending.Count;

    public string Add(StreamingSession request)
    {
        var now = _time.GetUtcNow();
        if (_pending.Count >= options.MaxOutstandingTokens)
        {
            foreach (var (token, entry) in _pending)
                if (entry.Expires <= now) _pending.TryRemove(token, out _);
            if (_pending.Count >= options.MaxOutstandingTokens)
                throw new StreamingCapacityException($"{options.MaxOutstandingTokens} streaming requests are already waiting for their clients");
        }
        var newToken = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        _pending[newToken] = (request, now + options.TokenLifetime);
        return newToken;
    }

    /// <summary>Takes the request for a token of the given kind; null if unknown, used, expired or of another kind.</summary>
    public StreamingSession? Take(string kind, string token)
    {
        if (!_pending.TryRemove(token, out var entry)) return null;
        if (entry.Expires <= _time.GetUtcNow() || entry.Request.Kind != kind) return null;
        return entry.Request;
    }
}
