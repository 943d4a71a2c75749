using System.Threading.Channels;
using Berth.Cri.V1;
using Berth.CriServer.Services;
using Berth.Runtime.Containers;
using Berth.Sandbox;
using RuntimeState = Berth.Runtime.Containers.ContainerState;

namespace Berth.CriServer.Events;

/// <summary>
/// Fans container state changes out to GetContainerEvents subscribers (kubelet's evented PLEG). Each change becomes
/// one event, built once with the pod's status and its containers' statuses, and offered to every subscriber under
/// one lock, so all see the same order. Subscribers have bounded buffers: one that falls behind is dropped and told
/// so, and the runtime never waits for a reader.
/// </summary>
public sealed partial class ContainerEvents : IDisposable
{
    private readonly ContainerManager _containers;
    private readonly SandboxManager _sandboxes;
    private readonly int _buffer;
    private readonly ILogger<ContainerEvents> _logger;
    private readonly Lock _lock = new();
    private readonly List<Subscription> _subscribers = [];

    public ContainerEvents(ContainerManager containers, SandboxManager sandboxes, int buffer, ILogger<ContainerEvents> logger)
    {
        _containers = containers;
        _sandboxes = sandboxes;
        _buffer = buffer;
        _logger = logger;
        _containers.Changed += OnChanged;
    }

    /// <summary>One subscriber: read <see cref="Events"/> until it completes; dispose to unsubscribe.</summary>
    public sealed class Subscription : IDisposable
    {
        private readonly ContainerEvents _owner;

        internal Subscription(ContainerEvents owner, int buffer)
        {
            _owner = owner;
            Channel = System.Threading.Channels.Channel.CreateBounded<ContainerEventResponse>(
                new BoundedChannelOptions(buffer) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        }

        internal Channel<ContainerEventResponse> Channel { get; }

        /// <summary>Completes with <see cref="ContainerEventsOverflowException"/> if the reader fell too far behind.</summary>
        public ChannelReader<ContainerEventResponse> Events => Channel.Reader;

        public void Dispose() => _owner.Remove(this);
    }

    public Subscription Subscribe()
    {
        var subscription = new Subscription(this, _buffer);
        lock (_lock) _subscribers.Add(subscription);
        return subscription;
    }

    private void Remove(Subscription subscription)
    {
        lock (_lock) _subscribers.Remove(subscription);
        subscription.Channel.Writer.TryComplete();
    }

    private void OnChanged(ContainerChange change)
    {
        lock (_lock)
        {
            if (_subscribers.Count == 0) return;
            var response = Build(change);
            for (var i = _subscribers.Count - 1; i >= 0; i--)
            {
                var subscription = _subscribers[i];
                if (subscription.Channel.Writer.TryWrite(response)) continue;
                // TryWrite fails only on a full buffer: the runtime does not wait for a slow reader.
                _subscribers.RemoveAt(i);
                subscription.Channel.Writer.TryComplete(new ContainerEventsOverflowException(_buffer));
                LogDropped(_logger, _buffer);
            }
        }
    }

    private ContainerEventResponse Build(ContainerChange change)
    {
        var record = change.Record;
        var response = new ContainerEventResponse
        {
            ContainerId = record.Id,
            ContainerEventType = change.Kind switch
            {
                ContainerChangeKind.Created => ContainerEventType.ContainerCreatedEvent,
                ContainerChangeKind.Started => ContainerEventType.ContainerStartedEvent,
                ContainerChangeKind.Exited => ContainerEventType.ContainerStoppedEvent,
                _ => ContainerEventType.ContainerDeletedEvent,
            },
            CreatedAt = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100,
        };
        if (_sandboxes.Get(record.PodId) is { } sandbox) response.PodSandboxStatus = SandboxMapper.ToStatus(sandbox);
        // The pod's containers as they are now; a removed one is no longer among them.
        foreach (var container in _containers.List())
        {
            if (container.PodId == record.PodId && container.State != RuntimeState.Creating)
                response.ContainersStatuses.Add(ContainerMapper.ToStatus(container));
        }
        return response;
    }

    public void Dispose() => _containers.Changed -= OnChanged;

    [LoggerMessage(Level = LogLevel.Warning, Message = "a GetContainerEvents subscriber fell {Buffer} events behind and was dropped")]
    private static partial void LogDropped(ILogger logger, int buffer);
}

/// <summary>Ends a subscription whose reader fell further behind than its buffer.</summary>
public sealed class ContainerEventsOverflowException(int buffer)
    : Exception($"the subscriber fell more than {buffer} events behind and was dropped; subscribe again and relist");
