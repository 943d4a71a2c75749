namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// A directory of shell-script CNI plugins for a test, chained after the real bridge plugin: they record
/// what they are given, fail on purpose, or hang so that berthd can be killed in the middle of a step.
/// A pass-through plugin prints its prevResult back on ADD, as a well-behaved last plugin must.
/// </summary>
public sealed class FakePlugins : IDisposable
{
    private const string PassThrough = "[ \"$CNI_COMMAND\" = ADD ] && echo \"$input\" | sed 's/.*\"prevResult\":\\(.*\\),\"runtimeConfig\".*/\\1/;s/.*\"prevResult\":\\(.*\\)}$/\\1/'\n";

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("berth-e2e-bin-").FullName;

    private string PidFile => Path.Combine(Directory, "hanging.pid");
    private string ReleaseFile => Path.Combine(Directory, "released");

    /// <summary>Appends each invocation ("COMMAND netns=NETNS stdin") to <paramref name="log"/> and passes the result through.</summary>
    public void Recording(string name, string log) => Write(name, $"input=$(cat)\necho \"$CNI_COMMAND netns=$CNI_NETNS $input\" >> {log}\n{PassThrough}exit 0\n");

    /// <summary>Fails ADD with the spec's error object; other commands succeed.</summary>
    public void FailingAdd(string name, string message) =>
        Write(name, $"cat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\necho '{{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"{message}\"}}'\nexit 1\n");

    /// <summary>Hangs on <paramref name="command"/> until <see cref="Release"/>; otherwise passes through.</summary>
    public void HangingOn(string name, string command) =>
        Write(name, $"input=$(cat)\nif [ \"$CNI_COMMAND\" = {command} ] && [ ! -e {ReleaseFile} ]; then echo $$ > {PidFile}; exec sleep 60; fi\n{PassThrough}exit 0\n");

    public async Task WaitUntilHangingAsync()
    {
        for (var i = 0; i < 500 && !File.Exists(PidFile); i++) await Task.Delay(20);
        if (!File.Exists(PidFile)) throw new TimeoutException("the hanging plugin was never called");
    }

    /// <summary>Ends the hung plugin (orphaned when berthd was killed) and lets later calls through.</summary>
    public void Release()
    {
        File.WriteAllText(ReleaseFile, "");
        if (File.Exists(PidFile))
        {
            Host.Run("kill", "-9", File.ReadAllText(PidFile).Trim());
            File.Delete(PidFile);
        }
    }

    private void Write(string name, string body)
    {
        var path = Path.Combine(Directory, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body);
        File.SetUnixFileMode(path, (UnixFileMode)0x1ED);
    }

    public void Dispose()
    {
        Release();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
