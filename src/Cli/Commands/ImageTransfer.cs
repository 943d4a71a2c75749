using System.CommandLine;
using System.Diagnostics;

namespace Berth.Cli.Commands;

/// <summary>
/// <c>berth image import</c> and <c>berth image export</c>: CRI has no way to load or save an archive, so these run
/// <c>berthd import</c> and <c>berthd export</c> (found beside berth, else on PATH), which work on the image store
/// itself: import needs berthd stopped, export only reads.
/// </summary>
internal static class ImageTransfer
{
    public static Command Create(GlobalOptions global)
    {
        var archive = new Argument<string>("archive") { Description = "an OCI image layout (directory, tar or tar.gz) or a docker save archive" };
        var name = new Option<string?>("--name") { Description = "name the image(s) in the archive" };
        var config = new Option<string?>("--config") { Description = "berthd's config file" };
        var root = new Option<string?>("--root") { Description = "berthd's root directory" };
        var import = new Command("import", "import images into berthd's store (run while berthd is stopped)") { archive, name, config, root };
        global.SetAction(import, async (result, _, cancellationToken) =>
        {
            var args = new List<string> { "import" };
            if (result.GetValue(config) is { } configPath) args.AddRange(["--config", configPath]);
            if (result.GetValue(root) is { } rootPath) args.AddRange(["--root", rootPath]);
            if (result.GetValue(name) is { } imageName) args.AddRange(["--name", imageName]);
            args.Add(result.GetValue(archive)!);
            return await RunBerthdAsync(args, cancellationToken);
        });
        var image = new Argument<string>("image") { Description = "image name, digest or ID" };
        var file = new Argument<string>("file") { Description = "the tar to write" };
        var export = new Command("export", "write an image as an OCI image layout tar (skopeo oci-archive:, docker load, berth image import)") { image, file, config, root };
        global.SetAction(export, async (result, _, cancellationToken) =>
        {
            var args = new List<string> { "export" };
            if (result.GetValue(config) is { } configPath) args.AddRange(["--config", configPath]);
            if (result.GetValue(root) is { } rootPath) args.AddRange(["--root", rootPath]);
            args.Add(result.GetValue(image)!);
            args.Add(Path.GetFullPath(result.GetValue(file)!));
            return await RunBerthdAsync(args, cancellationToken);
        });
        return new Command("image", "move images in and out of the node") { import, export };
    }

    private static async Task<int> RunBerthdAsync(IEnumerable<string> args, CancellationToken cancellationToken)
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "berthd");
        var start = new ProcessStartInfo(File.Exists(beside) ? beside : "berthd", args) { UseShellExecute = false };
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new CliException("can't start berthd");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CliException($"can't run berthd ({e.Message}): it must be beside berth or on PATH");
        }
        using (process)
        {
            await process.WaitForExitAsync(cancellationToken);
            return process.ExitCode;
        }
    }
}
