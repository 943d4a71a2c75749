using Google.Protobuf;

namespace Berth.Nri.Transport;

/// <summary>The methods a ttrpc server answers, by service and method name as they travel in a Request.</summary>
public sealed class TtrpcServices
{
    private readonly Dictionary<(string Service, string Method), Func<ByteString, CancellationToken, Task<IMessage>>> _methods = [];

    public TtrpcServices Add<TRequest>(string service, string method, MessageParser<TRequest> parser, Func<TRequest, CancellationToken, Task<IMessage>> handler)
        where TRequest : IMessage<TRequest>
    {
        _methods[(service, method)] = (payload, cancellationToken) => handler(parser.ParseFrom(payload), cancellationToken);
        return this;
    }

    internal bool TryGet(string service, string method, out Func<ByteString, CancellationToken, Task<IMessage>> handler) =>
        _methods.TryGetValue((service, method), out handler!);

    internal bool HasService(string service) => _methods.Keys.Any(k => k.Service == service);
}
