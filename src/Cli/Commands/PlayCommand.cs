using System.CommandLine;
using Berth.Cli.Pods;
using Berth.Cri.V1;

namespace Berth.Cli.Commands;

/// <summary>
/// <c>berth play [--detach] &lt;pod.yaml&gt;</c> runs Pod manifests through CRI as the kubelet would, and watches them
/// by their restartPolicy until nothing runs (or Ctrl-C, which leaves them running); <c>berth play --down</c> removes
/// what it made. <c>-</c> reads the manifest from stdin.
/// </summary>
internal static class PlayCommand
{
    public const string DefaultStateDirectory = "/var/lib/berth-play";

    public static Command Create(GlobalOptions global)
    {
        var file = new Argument<string?>("manifest") { Description = "a YAML file of one or more Pods, or - for stdin", Arity = ArgumentArity.ZeroOrOne };
        var fileOption = new Option<string?>("--file", "-f") { Description = "the manifest (as the argument)" };
        var down = new Option<bool>("--down") { Description = "stop and remove the manifest's pods" };
        var detach = new Option<bool>("--detach", "-d") { Description = "start the pods and return instead of watching them" };
        var state = new Option<string>("--state-dir") { Description = "where pod volumes live", DefaultValueFactory = _ => DefaultStateDirectory };
        var command = new Command("play", "run Kubernetes Pod manifests on this node, as the kubelet would") { file, fileOption, down, detach, state };
        global.SetAction(command, async (result, cri, cancellationToken) =>
        {
            var path = result.GetValue(fileOption) ?? result.GetValue(file) ?? throw new CliException("name a manifest (a file, or - for stdin)");
            string text;
            try
            {
                text = path == "-" ? await Console.In.ReadToEndAsync(cancellationToken) : await File.ReadAllTextAsync(path, cancellationToken);
            }
            catch (IOException e)
            {
                throw new CliException($"can't read {path}: {e.Message}");
            }
            try
            {
                // The manifest is checked whole before anything reaches the runtime.
                var manifest = ManifestReader.Read(text);
                var config = await cri.Runtime.RuntimeConfigAsync(new RuntimeConfigRequest(), deadline: cri.Deadline, cancellationToken: cancellationToken);
                var node = NodeFacts.Read(systemdCgroups: config.Linux?.CgroupDriver == CgroupDriver.Systemd);
                var runner = new PodRunner(cri, result.GetValue(state)!, Console.Out);
                var pods = manifest.Select(pod =>
                {
                    PodRunner.AssignUid(pod);
                    return new PodTranslator(pod, node);
                }).ToList();
                return result.GetValue(down)
                    ? await DownAsync(cri, runner, pods, cancellationToken)
                    : await UpAsync(cri, runner, pods, result.GetValue(detach), cancellationToken);
            }
            catch (ManifestException e)
            {
                throw new CliException($"{path}: {e.Message}");
            }
            catch (PodFailedException e)
            {
                throw new CliException(e.Message);
            }
        });
        return command;
    }

    private static async Task<int> UpAsync(CriConnection cri, PodRunner runner, IReadOnlyList<PodTranslator> pods, bool detach, CancellationToken cancellationToken)
    {
        var started = new List<PlayedPod>();
        try
        {
            foreach (var pod in pods) started.Add(await runner.StartAsync(pod, cancellationToken));
        }
        catch (Exception e) when (e is not PodFailedException)
        {
            // The pods before the one that failed go too: a manifest runs whole or not at all.
            foreach (var pod in started) await PodTeardown.RemoveAsync(cri, pod.Pod, pod.Volumes, pod.SandboxId, CancellationToken.None);
            throw;
        }
        if (detach) return 0;
        try
        {
            return await runner.SuperviseAsync(started, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("berth play: stopped watching; the pods keep running (berth play --down removes them)");
            return 130;
        }
    }

    private static async Task<int> DownAsync(CriConnection cri, PodRunner runner, IReadOnlyList<PodTranslator> pods, CancellationToken cancellationToken)
    {
        foreach (var pod in pods)
        {
            var sandboxes = await PodTeardown.FindAsync(cri, pod, cancellationToken);
            foreach (var sandbox in sandboxes) await PodTeardown.RemoveAsync(cri, pod, runner.VolumesOf(pod), sandbox.Id, cancellationToken);
            if (sandboxes.Count == 0) await PodTeardown.RemoveAsync(cri, pod, runner.VolumesOf(pod), null, cancellationToken);
            Console.Out.WriteLine(sandboxes.Count == 0 ? $"pod {pod.Namespace}/{pod.Name} was not running" : $"removed pod {pod.Namespace}/{pod.Name}");
        }
        return 0;
    }
}
