using System.Text;
using System.Threading.Channels;
using Berth.Streaming.RemoteCommand;

namespace Berth.Streaming.Tests;

public sealed class RemoteCommandProtocolTests
{
    [Fact]
    public void V4_success_is_a_Success_status() =>
        Assert.Equal("""{"metadata":{},"status":"Success"}""", Encoding.UTF8.GetString(RemoteCommandProtocol.Outcome("v4.channel.k8s.io", 0, null)));

    [Fact]
    public void V4_non_zero_exit_carries_the_code_as_an_ExitCode_cause() =>
        Assert.Equal(
            """{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}""",
            Encoding.UTF8.GetString(RemoteCommandProtocol.Outcome("v4.channel.k8s.io", 7, null)));

    [Fact]
    public void V4_failures_are_internal_errors() =>
        Assert.Equal(
            """{"metadata":{},"status":"Failure","message":"Internal error occurred: boom","reason":"InternalError","details":{"causes":[{"message":"boom"}]},"code":500}""",
            Encoding.UTF8.GetString(RemoteCommandProtocol.Outcome("v5.channel.k8s.io", null, "boom")));

    [Fact]
    public void Older_versions_say_nothing_on_success_and_text_on_failure()
    {
        Assert.Empty(RemoteCommandProtocol.Outcome("v3.channel.k8s.io", 0, null));
        Assert.Empty(RemoteCommandProtocol.Outcome("channel.k8s.io", null, null));
        Assert.Equal("command terminated with non-zero exit code: exit status 2", Encoding.UTF8.GetString(RemoteCommandProtocol.Outcome("v2.channel.k8s.io", 2, null)));
    }

    [Fact]
    public async Task Resize_events_are_read_across_chunk_boundaries()
    {
        var input = "{\"Width\":80,\"Height\":24}\n{\"Width\":1"u8.ToArray().Concat("20,\"Height\":40}\n{\"width\":0,\"height\":5}{\"Height\":9,\"Width\":9}"u8.ToArray()).ToArray();
        var sizes = Channel.CreateUnbounded<TerminalSize>();
        await RemoteCommandProtocol.ReadResizesAsync(new TrickleStream(input, 7), sizes.Writer, CancellationToken.None);
        var read = new List<TerminalSize>();
        await foreach (var size in sizes.Reader.ReadAllAsync()) read.Add(size);
        // The zero width is not a size; it is skipped, not fatal.
        Assert.Equal([new TerminalSize(80, 24), new TerminalSize(120, 40), new TerminalSize(9, 9)], read);
    }

    /// <summary>Returns its bytes a few at a time, as a network would.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(chunk, buffer.Length)], cancellationToken);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(137)]
    public void A_client_reads_back_the_exit_code_the_server_wrote(int exitCode)
    {
        foreach (var protocol in new[] { RemoteCommandProtocol.V4, RemoteCommandProtocol.V5 })
        {
            Assert.Equal(exitCode, RemoteCommandProtocol.ExitCodeOf(RemoteCommandProtocol.Outcome(protocol, exitCode, null), out var failure));
            Assert.Null(failure);
        }
    }

    [Fact]
    public void A_client_reads_a_failure_to_run_as_its_message()
    {
        Assert.Null(RemoteCommandProtocol.ExitCodeOf(RemoteCommandProtocol.Outcome(RemoteCommandProtocol.V5, null, "no such file"), out var failure));
        Assert.Equal("Internal error occurred: no such file", failure);
    }
}
