using System.IO.Pipelines;

namespace Berth.Streaming.Tests;

/// <summary>Two connected in-memory byte streams, like the two ends of a TCP connection.</summary>
internal static class DuplexPipe
{
    public static (Stream Server, Stream Client) Create()
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        return (new End(toServer.Reader, toClient.Writer), new End(toClient.Reader, toServer.Writer));
    }

    private sealed class End(PipeReader reader, PipeWriter writer) : DuplexStream
    {
        private readonly Stream _in = reader.AsStream();
        private readonly Stream _out = writer.AsStream();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _in.ReadAsync(buffer, cancellationToken);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _out.WriteAsync(buffer, cancellationToken);
        public override Task FlushAsync(CancellationToken cancellationToken) => _out.FlushAsync(cancellationToken);
        public override void Flush() => _out.Flush();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                writer.Complete();
                reader.Complete();
            }
            base.Dispose(disposing);
        }
    }
}
