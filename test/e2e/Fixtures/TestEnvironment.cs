namespace Berth.E2E.Tests.Fixtures;

/// <summary>
/// Where the published binaries are and whether this machine can run the e2e tests at all.
/// A test that cannot run fails with the reason; it never skips.
/// </summary>
public static class TestEnvironment
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string BinDir { get; } =
        Environment.GetEnvironmentVariable("BERTH_BIN_DIR") ?? Path.Combine(RepoRoot, "out", "bin");

    public static string Berthd => RequireBinary("berthd");

    /// <summary>The operator's CLI, published beside berthd.</summary>
    public static string BerthCli => RequireBinary("berth");

    public static void RequireRoot()
    {
        if (!Environment.IsPrivilegedProcess)
            throw new InvalidOperationException("Berth's e2e tests run as root (namespaces, mounts, cgroups): run hack/test as root.");
    }

    /// <summary>A host tool the tests need; missing, it fails the test with the package to install.</summary>
    public static string RequireTool(string path, string package) =>
        File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: install Debian's {package} (hack/setup does)");

    private static string RequireBinary(string name)
    {
        var path = Path.Combine(BinDir, name);
        if (!File.Exists(path))
            throw new InvalidOperationException($"{path} is missing: run hack/setup (or hack/publish) before the e2e tests.");
        return path;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cri.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"no Cri.sln above {AppContext.BaseDirectory}");
    }
}
