using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using Berth.Runtime.Native;
using CliWrap;

namespace Berth.Runtime.Containers;

/// <summary>A client's streams for an exec or attach; absent ones are null. Resizes arrive as (columns, rows).</summary>
public sealed record InteractiveStreams(Stream? Stdin, Stream? Stdout, Stream? Stderr, bool Tty, IAsyncEnumerable<(ushort Columns, ushort Rows)>? Resize);

public sealed partial class ContainerManager
{
    /// <summary>Execs (streaming and ExecSync) one container may have running at once: each holds a runc exec and pipes here.</summary>
    public const int MaxExecsPerContainer = 64;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _execs = new(StringComparer.Ordinal);

    private ExecSlot TakeExecSlot(string id)
    {
        var running = _execs.AddOrUpdate(id, 1, (_, n) => n + 1);
        if (running <= MaxExecsPerContainer) return new ExecSlot(this, id);
        ReleaseExecSlot(id);
        throw new ContainerLimitException($"container {id} has {MaxExecsPerContainer} execs running already; wait for one to end");
    }

    private void ReleaseExecSlot(string id)
    {
        if (_execs.AddOrUpdate(id, 0, (_, n) => n - 1) <= 0) _execs.TryRemove(KeyValuePair.Create(id, 0));
    }

    private readonly struct ExecSlot(ContainerManager manager, string id) : IDisposable
    {
        public void Dispose() => manager.ReleaseExecSlot(id);
    }

    /// <summary>Checks that a container can take an exec or attach now (it exists and runs).</summary>
    public ContainerRecord RequireRunning(string id)
    {
        var record = GetRequired(id);
        if (record.State != ContainerState.Running)
            throw new ContainerStateException($"container {id} is {record.State}; it must be running");
        return record;
    }

    /// <summary>
    /// Runs a command in the container with a client's streams, through <c>runc exec</c> (not detached, so its exit
    /// status is the command's). A TTY exec gives runc a pseudo-terminal of ours as its stdio; runc makes the
    /// container's own terminal and follows our size on SIGWINCH. Cancellation (the client is gone) kills the command
    /// inside the container, not just runc.
    /// </summary>
    public async Task<int> ExecAsync(string id, IReadOnlyList<string> command, InteractiveStreams io, CancellationToken cancellationToken)
    {
        var record = RequireRunning(id);
        if (command.Count == 0) throw new ContainerRequestException("cmd is required");
        using var slot = TakeExecSlot(id);
        var runtime = RuntimeOf(record);
        var pidFile = Path.Combine(record.Bundle, $"exec-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.pid");
        try
        {
            return io.Tty
                ? await ExecWithTerminalAsync(runtime, id, command, pidFile, io, cancellationToken)
                : await ExecWithPipesAsync(runtime, id, command, pidFile, io, cancellationToken);
        }
        finally
        {
            File.Delete(pidFile);
        }
    }

    private static async Task<int> ExecWithPipesAsync(OciRuntime runtime, string id, IReadOnlyList<string> command, string pidFile, InteractiveStreams io, CancellationToken cancellationToken)
    {
        using var force = new CancellationTokenSource();
        var run = runtime.Command(["exec", "--pid-file", pidFile, id, .. command])
            .WithStandardInputPipe(io.Stdin is null ? PipeSource.Null : PipeSource.FromStream(io.Stdin))
            .WithStandardOutputPipe(io.Stdout is null ? PipeTarget.Null : PipeTarget.ToStream(io.Stdout))
            .WithStandardErrorPipe(io.Stderr is null ? PipeTarget.Null : PipeTarget.ToStream(io.Stderr))
            .ExecuteAsync(force.Token, CancellationToken.None);
        return await WaitForExecAsync(run.Task.ContinueWith(t => t.Result.ExitCode, TaskScheduler.Default), pidFile, force, cancellationToken);
    }

    private static async Task<int> ExecWithTerminalAsync(OciRuntime runtime, string id, IReadOnlyList<string> command, string pidFile, InteractiveStreams io, CancellationToken cancellationToken)
    {
        using var pty = Pty.Open();
        using var force = new CancellationTokenSource();
        // The shell only opens the slave as runc's stdio and execs it, so runc's pid is the one CliWrap reports.
        var run = Cli.Wrap("/bin/sh")
            .WithArguments(["-c", "exec \"$0\" \"$@\" <>\"$BERTH_PTS\" >&0 2>&0", runtime.Binary, "--root", runtime.Root, "exec", "-t", "--pid-file", pidFile, id, .. command])
            .WithEnvironmentVariables(e => e.Set("BERTH_PTS", pty.SlavePath))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(force.Token, CancellationToken.None);
        using var master = new FileStream(pty.Master, FileAccess.ReadWrite, bufferSize: 0);
        using var copying = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        var output = Task.Run(async () =>
        {
            var buffer = ArrayPool<byte>.Shared.Rent(32 * 1024);
            try
            {
                int read;
                while ((read = await master.ReadAsync(buffer.AsMemory(0, 32 * 1024), CancellationToken.None)) > 0)
                    if (io.Stdout is not null) await io.Stdout.WriteAsync(buffer.AsMemory(0, read), copying.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // EIO: runc, the slave's last holder, has exited.
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }, CancellationToken.None);
        var input = io.Stdin is null ? Task.CompletedTask : Task.Run(async () =>
        {
            try
            {
                await io.Stdin.CopyToAsync(master, copying.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
            }
        }, CancellationToken.None);
        var resizes = io.Resize is null ? Task.CompletedTask : Task.Run(async () =>
        {
            try
            {
                await foreach (var (columns, rows) in io.Resize.WithCancellation(copying.Token))
                {
                    pty.Resize(columns, rows);
                    _ = Tmds.Linux.LibC.kill(run.ProcessId, Tmds.Linux.LibC.SIGWINCH);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);

        var exitCode = await WaitForExecAsync(run.Task.ContinueWith(t => t.Result.ExitCode, TaskScheduler.Default), pidFile, force, cancellationToken);
        await output.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        await copying.CancelAsync();
        await Task.WhenAll(input, resizes).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        return exitCode;
    }

    /// <summary>Waits for runc exec; if the client goes away first, the command dies inside the container, then runc.</summary>
    private static async Task<int> WaitForExecAsync(Task<int> run, string pidFile, CancellationTokenSource force, CancellationToken cancellationToken)
    {
        try
        {
            return await run.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            KillExecProcess(pidFile);
            force.CancelAfter(TimeSpan.FromSeconds(5));
            try
            {
                await run;
            }
            catch (Exception e) when (e is OperationCanceledException or AggregateException)
            {
            }
            throw;
        }
    }

    /// <summary>
    /// Attaches a client to the container's stdio through its shim: output frames ([stream][length][bytes]) go to the
    /// client's stdout or stderr, its stdin goes to the container, and resizes to the shim's terminal. Ends when the
    /// container's output ends or the client goes away; the container is left alone either way.
    /// </summary>
    public async Task AttachAsync(string id, InteractiveStreams io, CancellationToken cancellationToken)
    {
        var record = RequireRunning(id);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(Path.Combine(record.Bundle, ShimClient.AttachSocket)), cancellationToken);
        }
        catch (SocketException e)
        {
            throw new ContainerStateException($"the container's shim is not serving attach ({e.SocketErrorCode}); is the container running?");
        }
        using var copying = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var input = io.Stdin is null || !record.Stdin ? Task.CompletedTask : Task.Run(async () =>
        {
            var buffer = ArrayPool<byte>.Shared.Rent(32 * 1024);
            try
            {
                int read;
                while ((read = await io.Stdin.ReadAsync(buffer.AsMemory(0, 32 * 1024), copying.Token)) > 0)
                    await socket.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, copying.Token);
                socket.Shutdown(SocketShutdown.Send); // the shim closes the container's stdin here if stdin_once
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }, CancellationToken.None);
        var resizes = io.Resize is null || !record.Tty ? Task.CompletedTask : Task.Run(async () =>
        {
            try
            {
                await foreach (var (columns, rows) in io.Resize.WithCancellation(copying.Token))
                    await ShimClient.RequestAsync(record.Bundle, $"resize {columns} {rows}", copying.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ContainerException or SocketException or IOException)
            {
            }
        }, CancellationToken.None);

        try
        {
            await using var frames = new NetworkStream(socket, ownsSocket: false);
            var header = new byte[5];
            var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
            try
            {
                while (await ReadExactlyOrEndAsync(frames, header, cancellationToken))
                {
                    var remaining = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
                    var target = header[0] == 2 ? io.Stderr : io.Stdout;
                    while (remaining > 0)
                    {
                        var read = await frames.ReadAsync(buffer.AsMemory(0, Math.Min(remaining, buffer.Length)), cancellationToken);
                        if (read == 0) return;
                        if (target is not null) await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                        remaining -= read;
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        catch (IOException)
        {
        }
        finally
        {
            await copying.CancelAsync();
            await Task.WhenAll(input, resizes);
        }
    }

    private static async Task<bool> ReadExactlyOrEndAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            if (read == 0) return false;
            filled += read;
        }
        return true;
    }
}
