using System.CommandLine;
using Berth.Bench;

// hack/bench: numbers go to stdout and, with --output, to a file for the README; charts go beside that file.
Option<int> Count(string name, int value, string description) => new(name) { DefaultValueFactory = _ => value, Description = description };
var rounds = Count("--rounds", 3, "pulls of the large image");
var pods = Count("--pods", 50, "sandboxes in the sandbox benchmark");
var containers = Count("--containers", 50, "containers timed in the container benchmark");
var listed = Count("--list", 500, "created containers listed in the container benchmark");
var execs = Count("--execs", 50, "exec round trips in the streaming benchmark");
var statsCalls = Count("--stats-calls", 100, "calls of each stats RPC");
var nodeContainers = Count("--node-containers", 20, "containers in the cgroup v2 guest");
var scalePods = Count("--scale-pods", 250, $"pods on the node in the scale benchmark, a multiple of {ScaleBenchmark.Wave}");
var readCalls = Count("--read-calls", 100, "calls of each read path at scale (fewer when a runtime takes seconds per call)");
var soakPods = Count("--soak-pods", 100, "pods kept live by the soak");
var minutes = Count("--minutes", 30, "length of the soak");
var cdiRounds = Count("--cdi-rounds", 50, "CreateContainer calls of each kind in the CDI benchmark");
var nriRounds = Count("--nri-rounds", 40, "pods started with each number of NRI plugins in the NRI benchmark");
var checkpointRounds = Count("--checkpoint-rounds", 3, "checkpoints and restores of each memory size in the checkpoint benchmark");
var only = new Option<string>("--only")
{
    Description = "one benchmark; soak runs only when named",
    DefaultValueFactory = _ => "",
};
only.AcceptOnlyFromAmong("", "pull", "sandbox", "container", "streaming", "stats", "node", "scale", "soak", "cdi", "nri", "checkpoint");
var output = new Option<string?>("--output") { Description = "file the report is written to" };

var root = new RootCommand("Benchmarks Berth next to containerd 1.6 in one run.")
{
    rounds, pods, containers, listed, execs, statsCalls, nodeContainers, scalePods, readCalls, soakPods, minutes, cdiRounds, nriRounds, checkpointRounds, only, output,
};
root.SetAction(async (result, cancellationToken) =>
{
    var selected = result.GetValue(only)!;
    var file = result.GetValue(output);
    var plots = file is null ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(Path.GetFullPath(file))!;
    bool Runs(string name) => selected == name || (selected == "" && name != "soak");
    var reports = new List<string>();
    if (Runs("pull")) reports.Add(await PullBenchmark.RunAsync(result.GetValue(rounds)));
    if (Runs("sandbox")) reports.Add(await SandboxBenchmark.RunAsync(result.GetValue(pods)));
    if (Runs("container")) reports.Add(await ContainerBenchmark.RunAsync(result.GetValue(containers), result.GetValue(listed)));
    if (Runs("streaming")) reports.Add(await StreamingBenchmark.RunAsync(result.GetValue(execs)));
    if (Runs("stats")) reports.Add(await StatsBenchmark.RunAsync(result.GetValue(statsCalls)));
    if (Runs("node")) reports.Add(await NodeBenchmark.RunAsync(result.GetValue(nodeContainers), 20));
    if (Runs("cdi")) reports.Add(await CdiBenchmark.RunAsync(result.GetValue(cdiRounds)));
    if (Runs("nri")) reports.Add(await NriBenchmark.RunAsync(result.GetValue(nriRounds)));
    if (Runs("checkpoint")) reports.Add(await CheckpointBenchmark.RunAsync(result.GetValue(checkpointRounds)));
    if (Runs("scale")) reports.Add(await ScaleBenchmark.RunAsync(result.GetValue(scalePods), result.GetValue(readCalls), plots));
    if (Runs("soak")) reports.Add(await SoakBenchmark.RunAsync(result.GetValue(soakPods), TimeSpan.FromMinutes(result.GetValue(minutes)), plots, cancellationToken));
    var report = string.Join(Environment.NewLine + Environment.NewLine, reports);
    Console.WriteLine(report);
    if (file is not null) await File.WriteAllTextAsync(file, report + Environment.NewLine, cancellationToken);
});
return await root.Parse(args).InvokeAsync();
