using Berth.Bench;

// hack/bench: numbers go to stdout and, with --output, to a file for the README.
var rounds = 3;
string? output = null;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--rounds") rounds = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--output") output = args[++i];
}

var report = await PullBenchmark.RunAsync(rounds);
Console.WriteLine(report);
if (output is not null) await File.WriteAllTextAsync(output, report + Environment.NewLine);
