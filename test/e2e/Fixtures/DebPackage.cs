using System.Diagnostics;

namespace Berth.E2E.Tests.Fixtures;

/// <summary>hack/package run on the binaries the tests use.</summary>
public static class DebPackage
{
    /// <summary>Builds <c>berth_&lt;version&gt;_amd64.deb</c> into <paramref name="directory"/> and returns its path.</summary>
    public static async Task<string> BuildAsync(string directory)
    {
        var info = new ProcessStartInfo(Path.Combine(TestEnvironment.RepoRoot, "hack", "package"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            Environment = { ["BERTH_PACKAGE_DIR"] = directory, ["BERTH_OUT"] = TestEnvironment.BinDir },
        };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var output = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, $"hack/package exited {process.ExitCode}:\n{output}");
        var deb = output.Split('\n').Last(l => l.EndsWith(".deb", StringComparison.Ordinal));
        Assert.Matches(@"/berth_\d+\.\d+\.\d+_amd64\.deb$", deb);
        return deb;
    }
}
