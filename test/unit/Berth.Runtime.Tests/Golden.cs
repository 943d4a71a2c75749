using System.Runtime.CompilerServices;
using System.Text.Json;
using Berth.Runtime.Spec;

namespace Berth.Runtime.Tests;

/// <summary>
/// Compares a spec with its golden file, <c>Golden/&lt;name&gt;.json</c>. With BERTH_UPDATE_GOLDEN=1 the file is
/// rewritten instead (in the source tree), so a deliberate change is one run and a reviewed diff.
/// </summary>
internal static class Golden
{
    public static void Match(string name, OciSpec spec, [CallerFilePath] string callerPath = "")
    {
        var actual = JsonSerializer.Serialize(spec, OciJsonContext.Default.OciSpec).ReplaceLineEndings("\n") + "\n";
        var sourceFile = Path.Combine(Path.GetDirectoryName(callerPath)!, "Golden", name + ".json");
        if (Environment.GetEnvironmentVariable("BERTH_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(sourceFile, actual);
            return;
        }
        var expectedFile = Path.Combine(AppContext.BaseDirectory, "Golden", name + ".json");
        Assert.True(File.Exists(expectedFile), $"no golden file {name}.json; run with BERTH_UPDATE_GOLDEN=1 to create it, then review it");
        Assert.Equal(File.ReadAllText(expectedFile), actual);
    }
}
