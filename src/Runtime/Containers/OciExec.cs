using System.Buffers;
using System.Security.Cryptography;
using Berth.Native;
using Berth.Runtime.Native;
using CliWrap;

namespace Berth.Runtime.Containers;

/// <summary>
/// Commands in a running container through <c>runc exec</c> (not detached, so its exit status is the command's).
/// Each writes a pid file in the bundle, so that a timeout or a client that went away kills the command itself
/// inside the container: killing runc alone would orphan it.
/// </summary>
internal static class OciExec
{
    private const int OutputCap = 16 * 1024 * 1024;

    /// <summary>ExecSync: the output of each stream is kept up to 16 MiB, and the rest read and dropped.</summary>
    public static async Task<ExecResult> RunCollectingAsync(OciRuntime runtime, ContainerRecord record, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var pidFile = PidFileIn(record.Bundle);
        using var stdout = new CappedBuffer(OutputCap);
        using var stderr = new CappedBuffer(OutputCap);
        using var kill = new CancellationTokenSource();
        var run = runtime.Command(["exec", "--pid-file", pidFile, record.Id, .. command])
            .WithStandardOutputPipe(stdout.Target)
            .WithStandardErrorPipe(stderr.Target)
            .ExecuteAsync(kill.Token, CancellationToken.None);
        try
        {
            var finished = await Task.WhenAny(run.Task, Task.Delay(timeout > TimeSpan.Zero ? timeout : Timeout.InfiniteTimeSpan, cancellationToken));
            if (finished != run.Task)
            {
                KillCommand(pidFile);
                kill.CancelAfter(TimeSpan.FromSeconds(5));
                try
                {
                    await run.Task;
                }
                catch (OperationCanceledException)
                {
                }
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException($"command {string.Join(' ', command)} timed out after {timeout.TotalSeconds:0.###}s");
            }
            var result = await run.Task;
            return new ExecResult(result.ExitCode, stdout.ToArray(), stderr.ToArray());
        }
        finally
        {
            File.Delete(pidFile);
        }
    }

    /// <summary>
    /// A streaming exec. With a TTY, runc gets a pseudo-terminal of ours as its stdio; it makes the container's own
    /// terminal and follows our size on SIGWINCH.
    /// </summary>
    public static async Task<int> RunAsync(OciRuntime runtime, ContainerRecord record, IReadOnlyList<string> command, InteractiveStreams io, CancellationToken cancellationToken)
    {
        var pidFile = PidFileIn(record.Bundle);
        try
        {
            return io.Tty
                ? await RunWithTerminalAsync(runtime, record.Id, command, pidFile, io, cancellationToken)
                : await RunWithPipesAsync(runtime, record.Id, command, pidFile, io, cancellationToken);
        }
        finally
        {
            File.Delete(pidFile);
        }
    }

    private static string PidFileIn(string bundle) => Path.Combine(bundle, $"exec-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.pid");

    private static async Task<int> RunWithPipesAsync(OciRuntime runtime, string id, IReadOnlyList<string> command, string pidFile, InteractiveStreams io, CancellationToken cancellationToken)
    {
        using var force = new CancellationTokenSource();
        var run = runtime.Command(["exec", "--pid-file", pidFile, id, .. command])
            .WithStandardInputPipe(io.Stdin is null ? PipeSource.Null : PipeSource.FromStream(io.Stdin))
            .WithStandardOutputPipe(io.Stdout is null ? PipeTarget.Null : PipeTarget.ToStream(io.Stdout))
            .WithStandardErrorPipe(io.Stderr is null ? PipeTarget.Null : PipeTarget.ToStream(io.Stderr))
            .ExecuteAsync(force.Token, CancellationToken.None);
        return await WaitAsync(run.Task.ContinueWith(t => t.Result.ExitCode, TaskScheduler.Default), pidFile, force, cancellationToken);
    }

    private static async Task<int> RunWithTerminalAsync(OciRuntime runtime, string id, IReadOnlyList<string> command, string pidFile, InteractiveStreams io, CancellationToken cancellationToken)
    {
        using var pty = Pty.Open();
        using var force = new CancellationTokenSource();
        using var copying = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await using var sizes = io.Resize?.GetAsyncEnumerator(copying.Token);
        var nextSize = sizes is null ? null : await InitialSizeAsync(sizes, pty);
        // The shell only opens the slave as runc's stdio and execs it, so runc's pid is the one CliWrap reports.
        var run = Cli.Wrap("/bin/sh")
            .WithArguments(["-c", "exec \"$0\" \"$@\" <>\"$BERTH_PTS\" >&0 2>&0", runtime.Binary, "--root", runtime.Root,
                .. (runtime.SystemdCgroup ? (string[])["--systemd-cgroup"] : []), "exec", "-t", "--pid-file", pidFile, id, .. command])
            .WithEnvironmentVariables(e => e.Set("BERTH_PTS", pty.SlavePath))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(force.Token, CancellationToken.None);
        using var master = new FileStream(pty.Master, FileAccess.ReadWrite, bufferSize: 0);

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
        var resizes = sizes is null ? Task.CompletedTask : Task.Run(async () =>
        {
            try
            {
                for (; await nextSize!; nextSize = sizes.MoveNextAsync().AsTask())
                {
                    pty.Resize(sizes.Current.Columns, sizes.Current.Rows);
                    _ = Tmds.Linux.LibC.kill(run.ProcessId, Tmds.Linux.LibC.SIGWINCH);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);

        var exitCode = await WaitAsync(run.Task.ContinueWith(t => t.Result.ExitCode, TaskScheduler.Default), pidFile, force, cancellationToken);
        await output.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        await copying.CancelAsync();
        await Task.WhenAll(input, resizes).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        return exitCode;
    }

    /// <summary>
    /// kubectl, crictl and berth send the terminal's size as soon as the stream opens, so a terminal exec waits a
    /// moment for it and the command starts at the caller's size instead of 0x0. Returns the read of the next size:
    /// the first one still on its way, or the one after it.
    /// </summary>
    private static async Task<Task<bool>> InitialSizeAsync(IAsyncEnumerator<(ushort Columns, ushort Rows)> sizes, Pty pty)
    {
        var first = sizes.MoveNextAsync().AsTask();
        if (await Task.WhenAny(first, Task.Delay(InitialSizeWait)) != first) return first;
        if (!await first) return Task.FromResult(false);
        pty.Resize(sizes.Current.Columns, sizes.Current.Rows);
        return sizes.MoveNextAsync().AsTask();
    }

    private static readonly TimeSpan InitialSizeWait = TimeSpan.FromMilliseconds(250);

    /// <summary>Waits for runc exec; if the client goes away first, the command dies inside the container, then runc.</summary>
    private static async Task<int> WaitAsync(Task<int> run, string pidFile, CancellationTokenSource force, CancellationToken cancellationToken)
    {
        try
        {
            return await run.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            KillCommand(pidFile);
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

    private static void KillCommand(string pidFile)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid))
            {
                ProcFs.Kill(pid);
                return;
            }
            Thread.Sleep(20);
        }
    }

    /// <summary>A bounded in-memory sink: output past the cap is read and dropped, so the process never blocks on a full pipe.</summary>
    private sealed class CappedBuffer(int cap) : IDisposable
    {
        private readonly MemoryStream _stream = new();

        public PipeTarget Target => PipeTarget.Create(CopyAsync);

        public byte[] ToArray() => _stream.ToArray();

        public void Dispose() => _stream.Dispose();

        private async Task CopyAsync(Stream source, CancellationToken cancellationToken)
        {
            var buffer = new byte[16 * 1024];
            int read;
            while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
            {
                var room = cap - (int)_stream.Length;
                if (room > 0) _stream.Write(buffer, 0, Math.Min(room, read));
            }
        }
    }
}
