using System.Runtime.InteropServices;
using Berth.Native;

namespace Berth.ImageStore.Tests;

/// <summary>Measuring and removing trees that were shaped to hurt: links out, depth beyond PATH_MAX, mounts inside.</summary>
public sealed partial class FileTreeTests : IDisposable
{
    private readonly string _sandbox = Directory.CreateTempSubdirectory("berth-filetree-").FullName;

    public void Dispose() => FileTree.Remove(_sandbox);

    private string Make(string relative)
    {
        var path = Path.Combine(_sandbox, relative);
        Directory.CreateDirectory(path);
        return path;
    }

    [Fact]
    public void Measure_counts_a_symlink_to_the_root_as_one_entry_and_never_walks_it()
    {
        var tree = Make("tree");
        File.CreateSymbolicLink(Path.Combine(tree, "escape"), "/");
        File.CreateSymbolicLink(Path.Combine(tree, "run"), "/run");
        var usage = FileTree.Measure(tree, maxEntries: 1000);
        Assert.Equal(3UL, usage.Inodes); // the root and two links
        Assert.True(usage.Complete);
    }

    [Fact]
    public void Measure_counts_file_blocks_and_hard_links_once()
    {
        var tree = Make("tree");
        var file = Path.Combine(tree, "data");
        File.WriteAllBytes(file, new byte[64 * 1024]);
        Link(file, Path.Combine(tree, "again"));
        Directory.CreateDirectory(Path.Combine(tree, "sub"));
        var usage = FileTree.Measure(tree, maxEntries: 1000);
        Assert.Equal(3UL, usage.Inodes); // root, data (linked twice), sub
        Assert.InRange(usage.Bytes, 64UL * 1024, 64UL * 1024 + 3 * 64 * 1024);
    }

    [Fact]
    public void Measure_walks_deeper_than_path_max_and_than_its_descriptor_window()
    {
        var tree = Make("tree");
        // 120 levels of 100-byte names: a 12 KB path, four times the window of open descriptors.
        var depth = DeepTree.Create(tree, levels: 120, nameLength: 100, filesPerLevel: 2);
        Assert.Equal(120, depth);
        var usage = FileTree.Measure(tree, maxEntries: 10_000);
        Assert.True(usage.Complete);
        Assert.Equal(1UL + 120 * 3, usage.Inodes); // the root, then per level a directory and two files
    }

    [Fact]
    public void Measure_stops_at_its_budget_and_says_so()
    {
        var tree = Make("tree");
        for (var i = 0; i < 50; i++) File.WriteAllText(Path.Combine(tree, $"f{i}"), "");
        var usage = FileTree.Measure(tree, maxEntries: 10);
        Assert.False(usage.Complete);
        Assert.Equal(11UL, usage.Inodes);
    }

    [Fact]
    public void Measure_of_a_missing_directory_is_empty()
    {
        var usage = FileTree.Measure(Path.Combine(_sandbox, "absent"), maxEntries: 10);
        Assert.Equal(0UL, usage.Inodes);
        Assert.True(usage.Complete);
    }

    [Fact]
    public void Remove_deletes_links_not_their_targets()
    {
        var outside = Make("outside");
        File.WriteAllText(Path.Combine(outside, "keep"), "keep");
        var tree = Make("tree");
        File.CreateSymbolicLink(Path.Combine(tree, "out"), outside);
        Directory.CreateDirectory(Path.Combine(tree, "a", "b"));
        File.CreateSymbolicLink(Path.Combine(tree, "a", "b", "up"), "../../..");

        FileTree.Remove(tree);

        Assert.False(Directory.Exists(tree));
        Assert.Equal("keep", File.ReadAllText(Path.Combine(outside, "keep")));
    }

    [Fact]
    public void Remove_deletes_a_tree_far_deeper_than_path_max()
    {
        var tree = Make("tree");
        DeepTree.Create(tree, levels: 300, nameLength: 200, filesPerLevel: 1); // a 60 KB path
        FileTree.Remove(tree);
        Assert.False(Directory.Exists(tree));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_sandbox));
    }

    [Fact]
    public void Remove_of_a_file_a_link_or_nothing_works()
    {
        var file = Path.Combine(_sandbox, "file");
        File.WriteAllText(file, "x");
        var link = Path.Combine(_sandbox, "link");
        File.CreateSymbolicLink(link, _sandbox);
        FileTree.Remove(file);
        FileTree.Remove(link);
        FileTree.Remove(Path.Combine(_sandbox, "absent"));
        Assert.True(Directory.Exists(_sandbox));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_sandbox));
    }

    [Fact]
    public void Remove_never_enters_a_mount_and_names_it()
    {
        if (!Environment.IsPrivilegedProcess) throw new InvalidOperationException("mounting a tmpfs needs root: run the unit tests as root");
        var tree = Make("tree");
        var mount = Make("tree/sub/mnt");
        Assert.Equal(0, MountTmpfs("tmpfs", mount, "tmpfs", 0, "size=1m"));
        try
        {
            File.WriteAllText(Path.Combine(mount, "inside"), "keep");
            var error = Assert.Throws<IOException>(() => FileTree.Remove(tree));
            Assert.Contains("tree/sub/mnt", error.Message, StringComparison.Ordinal);
            Assert.Equal("keep", File.ReadAllText(Path.Combine(mount, "inside")));
            Assert.Equal(2UL, FileTree.Measure(Path.Combine(tree, "sub"), 100).Inodes); // sub and the mount point, not its content
        }
        finally
        {
            Assert.Equal(0, Umount(mount));
        }
        FileTree.Remove(tree);
        Assert.False(Directory.Exists(tree));
    }

    private static void Link(string existing, string link)
    {
        Assert.Equal(0, LinkNative(existing, link));
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkNative(string existing, string link);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MountTmpfs(string source, string target, string type, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "umount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Umount(string target);
}
