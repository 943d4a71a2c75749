using System.Diagnostics;
using Berth.Native;
using Berth.ShimProtocol;

namespace Berth.Sandbox;

/// <summary>
/// A pod's own user namespace and the network, IPC and UTS namespaces it owns, made by <c>berth-shim userns</c>
/// (<see cref="UserNamespaceHelperProcess"/>), then pinned from the helper's /proc entry and set up from a thread of
/// berthd's. A pod that shares a PID namespace gets its infra from the helper too, started inside the user namespace
/// so that the PID namespace is the user namespace's as well: only then may a container there mount its /proc.
/// </summary>
internal static class UserNamespacePinner
{
    private const PodNamespaces Owned = PodNamespaces.Network | PodNamespaces.Ipc | PodNamespaces.Uts;

    public static async Task<InfraProcess?> CreateAsync(
        string shimBinary, string sandboxId, string directory, UserNamespaceMapping mapping, bool sharedPid, string hostname,
        IReadOnlyDictionary<string, string> sysctls, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        // The pins and an infra already started are the caller's to undo on failure (found by path and by command line).
        await using var helper = await UserNamespaceHelperProcess.StartAsync(shimBinary, sandboxId, mapping, sharedPid, cancellationToken);
        NamespacePinner.Adopt(directory, helper.Child, PodNamespaces.User | Owned);
        if (helper.Infra is { } infra) PodInfra.PinPidNamespace(directory, infra.Pid);
        NamespacePinner.Configure(directory, Owned, hostname, sysctls, ipcSysctlWriter: mapping.Uids.HostId);
        await helper.ReleaseAsync(cancellationToken);
        return helper.Infra;
    }
}

/// <summary>
/// A user namespace made only to try something with it (whether a filesystem takes idmapped mounts), then let go.
/// berthd asks once at startup, so Status can say which handlers offer user namespaces.
/// </summary>
public static class ScratchUserNamespace
{
    /// <summary>The ID range critest probes with; any range would do.</summary>
    private static readonly IdMapping Range = new(0, 65536, 65536);

    /// <summary>
    /// The test's answer, given the namespace's /proc path; false with the reason when no user namespace could be made
    /// at all (a kernel or a sysctl that forbids them, a helper that cannot run): then pods get none either.
    /// </summary>
    public static async Task<(bool Answer, string? Failure)> TestAsync(string shimBinary, Func<string, bool> test, CancellationToken cancellationToken)
    {
        try
        {
            await using var helper = await UserNamespaceHelperProcess.StartAsync(shimBinary, "probe", new UserNamespaceMapping(Range, Range), sharedPid: false, cancellationToken);
            var answer = test($"/proc/{helper.Child}/ns/user");
            await helper.ReleaseAsync(cancellationToken);
            return (answer, null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return (false, e.Message);
        }
    }
}

/// <summary>
/// berthd's side of <c>berth-shim userns</c> (<see cref="UserNamespaceHelperProtocol"/>). berthd has many threads, and
/// unshare(CLONE_NEWUSER) wants a caller with one, so the helper makes the namespaces; berthd writes their ID maps (as
/// root of the node it may map any range) and, once done with them, lets the helper go. Disposed before that, the
/// helper and its child are killed.
/// </summary>
internal sealed class UserNamespaceHelperProcess : IAsyncDisposable
{
    private static readonly TimeSpan HelperTimeout = TimeSpan.FromSeconds(10);

    private readonly Process _process;
    private readonly CancellationTokenSource _timeout;
    private bool _released;

    private UserNamespaceHelperProcess(Process process, CancellationTokenSource timeout)
    {
        _process = process;
        _timeout = timeout;
    }

    /// <summary>The helper's child, which holds the user, network, IPC and UTS namespaces until released.</summary>
    public int Child { get; private set; }

    /// <summary>The pod's infra, PID 1 of a PID namespace of the user namespace's, when one was asked for.</summary>
    public InfraProcess? Infra { get; private set; }

    public static async Task<UserNamespaceHelperProcess> StartAsync(
        string shimBinary, string sandboxId, UserNamespaceMapping mapping, bool sharedPid, CancellationToken cancellationToken)
    {
        if (!File.Exists(shimBinary)) throw new FileNotFoundException($"the user namespace helper {shimBinary} does not exist (runtime.shim_binary)");
        var start = new ProcessStartInfo(shimBinary) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true };
        foreach (var argument in UserNamespaceHelperProtocol.ToArguments(sandboxId, sharedPid)) start.ArgumentList.Add(argument);
        var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(HelperTimeout);
        var helper = new UserNamespaceHelperProcess(Process.Start(start) ?? throw new IOException($"{shimBinary} did not start"), timeout);
        try
        {
            helper.Child = await helper.ExpectAsync(UserNamespaceHelperProtocol.Child, cancellationToken);
            // One write each, as the kernel takes a map only whole and only once.
            File.WriteAllText($"/proc/{helper.Child}/uid_map", mapping.Uids.ToMapLine());
            File.WriteAllText($"/proc/{helper.Child}/gid_map", mapping.Gids.ToMapLine());
            // What the line says does not matter to the helper; it waits for a line.
            await helper._process.StandardInput.WriteLineAsync("mapped".AsMemory(), timeout.Token);
            await helper._process.StandardInput.FlushAsync(timeout.Token);
            if (sharedPid)
            {
                var pid = await helper.ExpectAsync(UserNamespaceHelperProtocol.Infra, cancellationToken);
                helper.Infra = new InfraProcess(pid, ProcFs.StartTimeOf(pid) ?? throw new IOException($"the infra process of sandbox {sandboxId} exited at once"));
            }
            _ = await helper.ExpectAsync(UserNamespaceHelperProtocol.Ready, cancellationToken);
            return helper;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await helper.DisposeAsync();
            throw new IOException($"the user namespace helper did not answer within {HelperTimeout.TotalSeconds:F0} s");
        }
        catch
        {
            await helper.DisposeAsync();
            throw;
        }
    }

    /// <summary>Closes the helper's stdin, which ends its child and then the helper, and checks that both ended well.</summary>
    public async Task ReleaseAsync(CancellationToken cancellationToken)
    {
        _process.StandardInput.Close();
        try
        {
            await _process.WaitForExitAsync(_timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException($"the user namespace helper did not exit within {HelperTimeout.TotalSeconds:F0} s of its release");
        }
        if (_process.ExitCode != 0) throw new IOException($"the user namespace helper exited with {_process.ExitCode}");
        _released = true;
    }

    public ValueTask DisposeAsync()
    {
        if (!_released)
        {
            if (Child > 0) ProcFs.Kill(Child);
            try
            {
                _process.Kill();
            }
            catch (InvalidOperationException)
            {
                // It has exited already.
            }
        }
        _process.Dispose();
        _timeout.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<int> ExpectAsync(string word, CancellationToken cancellationToken)
    {
        var line = await _process.StandardOutput.ReadLineAsync(_timeout.Token);
        var (said, pid, error) = UserNamespaceHelperProtocol.Parse(line);
        if (error is not null) throw new IOException($"berth-shim {UserNamespaceHelperProtocol.Verb}: {error}");
        cancellationToken.ThrowIfCancellationRequested();
        return said == word ? pid : throw new IOException($"berth-shim {UserNamespaceHelperProtocol.Verb}: '{line}' where '{word}' was due");
    }
}
