using Grpc.Core;

namespace Berth.CriServer.Services;

/// <summary>
/// The Stream* RPCs (Kubernetes 1.36) send what their List twins return, in messages of at most a chunk of items,
/// so a node with many pods or containers never meets the gRPC message size limit. No items, no messages.
/// </summary>
internal static class ListStreaming
{
    public static Task SendAsync<TItem, TResponse>(
        IEnumerable<TItem> items, int chunkSize, Func<IEnumerable<TItem>, TResponse> message,
        IServerStreamWriter<TResponse> writer, CancellationToken cancellationToken) =>
        SendAsync(items.ToAsyncEnumerable(), chunkSize, message, writer, cancellationToken);

    public static async Task SendAsync<TItem, TResponse>(
        IAsyncEnumerable<TItem> items, int chunkSize, Func<IEnumerable<TItem>, TResponse> message,
        IServerStreamWriter<TResponse> writer, CancellationToken cancellationToken)
    {
        await foreach (var chunk in items.Chunk(chunkSize).WithCancellation(cancellationToken))
            await writer.WriteAsync(message(chunk), cancellationToken);
    }
}
