using Berth.Bench;

// hack/bench: numbers go to stdout and, with --output, to a file for the README.
var rounds = 3;
var pods = 50;
var containers = 50;
var listed = 500;
var execs = 50;
var statsCalls = 100;
var nodeContainers = 20;
string? output = null;
var only = "";
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--rounds") rounds = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--pods") pods = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--containers") containers = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--list") listed = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--execs") execs = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--stats-calls") statsCalls = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--node-containers") nodeContainers = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--only") only = args[++i];
    else if (args[i] == "--output") output = args[++i];
}

var reports = new List<string>();
if (only is "" or "pull") reports.Add(await PullBenchmark.RunAsync(rounds));
if (only is "" or "sandbox") reports.Add(await SandboxBenchmark.RunAsync(pods));
if (only is "" or "container") reports.Add(await ContainerBenchmark.RunAsync(containers, listed));
if (only is "" or "streaming") reports.Add(await StreamingBenchmark.RunAsync(execs));
if (only is "" or "stats") reports.Add(await StatsBenchmark.RunAsync(statsCalls));
if (only is "" or "node") reports.Add(await NodeBenchmark.RunAsync(nodeContainers, 20));
var report = string.Join(Environment.NewLine + Environment.NewLine, reports);
Console.WriteLine(report);
if (output is not null) await File.WriteAllTextAsync(output, report + Environment.NewLine);
