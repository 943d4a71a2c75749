using System.Formats.Tar;
using System.Text;
using Berth.ImageStore.Native;
using Berth.ImageStore.Snapshots;

namespace Berth.ImageStore.Tests;

/// <summary>Unpacking real tars onto the real filesystem (root is needed for owners, devices and trusted xattrs).</summary>
public sealed class LayerUnpackerTests : IDisposable
{
    private readonly string _sandbox;
    private readonly string _root;
    private readonly string _outside;

    public LayerUnpackerTests()
    {
        if (!Environment.IsPrivilegedProcess)
            throw new InvalidOperationException("the unpacker tests set owners, whiteout devices and trusted.* xattrs: run them as root");
        _sandbox = Directory.CreateTempSubdirectory("berth-unit-").FullName;
        _root = Path.Combine(_sandbox, "layer");
        _outside = Path.Combine(_sandbox, "outside");
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_outside);
        File.WriteAllText(Path.Combine(_outside, "secret"), "untouched");
    }

    public void Dispose() => Berth.Native.FileTree.Remove(_sandbox);

    private async Task<long> Unpack(TarBuilder tar) => (await LayerUnpacker.UnpackAsync(tar.Build(), _root, CancellationToken.None)).ContentBytes;

    private string At(string relative) => Path.Combine(_root, relative);

    [Fact]
    public async Task Files_keep_content_owner_mode_and_mtime()
    {
        var size = await Unpack(new TarBuilder()
            .Directory("etc", (UnixFileMode)0x1ED)
            .File("etc/hostname", "berth\n", (UnixFileMode)0x1A4, uid: 1000, gid: 2000)
            .File("bin/su", "#!", (UnixFileMode)0x9ED /* 04755 */, uid: 0, gid: 0)
            .File("bin/sg", "#!", (UnixFileMode)0x5ED /* 02755 */, uid: 0, gid: 50)
            .Directory("tmp", (UnixFileMode)0x3FF /* 01777 */));

        Assert.Equal(6 + 2 + 2, size);
        Assert.Equal("berth\n", await File.ReadAllTextAsync(At("etc/hostname")));
        AssertStat("etc/hostname", 0x81A4, 1000, 2000);
        AssertStat("bin/su", 0x89ED, 0, 0);
        AssertStat("bin/sg", 0x85ED, 0, 50);
        AssertStat("tmp", 0x43FF, 0, 0);
        Assert.Equal(TarBuilder.Mtime, File.GetLastWriteTimeUtc(At("etc/hostname")));
        // Directory times are applied last, after their children were created.
        Assert.Equal(TarBuilder.Mtime, Directory.GetLastWriteTimeUtc(At("etc")));
        // An implied parent is created 0755.
        AssertStat("bin", 0x41ED, 0, 0);
    }

    [Fact]
    public async Task Links_fifos_and_xattrs_are_kept()
    {
        await Unpack(new TarBuilder()
            .File("bin/busybox", "elf", (UnixFileMode)0x1ED, xattrs: new Dictionary<string, string> { ["user.berth"] = "hello" })
            .HardLink("bin/sh", "bin/busybox")
            .Symlink("bin/ls", "busybox")
            .Symlink("usr/bin/env", "/bin/busybox")
            .Fifo("run/fifo"));

        Assert.Equal(File.ReadAllText(At("bin/busybox")), File.ReadAllText(At("bin/sh")));
        Assert.Equal(Inode("bin/busybox"), Inode("bin/sh"));
        Assert.Equal("busybox", new FileInfo(At("bin/ls")).LinkTarget);
        Assert.Equal("/bin/busybox", new FileInfo(At("usr/bin/env")).LinkTarget);
        Assert.Equal(0x1000u, StatOf("run/fifo").Mode & 0xF000);
        Assert.Equal("hello"u8.ToArray(), Sys.LGetXattr(At("bin/busybox"), "user.berth"));
    }

    [Fact]
    public async Task Binary_xattr_values_are_kept_byte_for_byte()
    {
        // security.capability as setcap writes it (vfs_cap_data v2, cap_net_raw permitted and effective), and a
        // value that is no UTF-8 at all: System.Formats.Tar alone would decode both lossily.
        byte[] capability = [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        byte[] binary = [0xff, 0xfe, 0x00, 0x01, (byte)'\n', (byte)'='];
        var tar = RawTar.Files(
            ("plain", "a"u8.ToArray(), []),
            ("ping", "b"u8.ToArray(), [("SCHILY.xattr.security.capability", capability), ("SCHILY.xattr.user.bin", binary)]),
            ("after", "c"u8.ToArray(), []),
            // libarchive's form: the name URL-encoded, the value in base64 without padding.
            ("libarchive", "d"u8.ToArray(), [("LIBARCHIVE.xattr.user.b%20n", "//4AAQo9"u8.ToArray())]));

        await LayerUnpacker.UnpackAsync(new MemoryStream(tar), _root, CancellationToken.None);

        Assert.Equal(capability, Sys.LGetXattr(At("ping"), "security.capability"));
        Assert.Equal(binary, Sys.LGetXattr(At("ping"), "user.bin"));
        Assert.Equal(binary, Sys.LGetXattr(At("libarchive"), "user.b n"));
        Assert.Null(Sys.LGetXattr(At("plain"), "user.bin"));
        Assert.Null(Sys.LGetXattr(At("after"), "user.bin"));
        Assert.Equal("c", File.ReadAllText(At("after")));
    }

    [Fact]
    public async Task Whiteouts_become_overlay_whiteouts()
    {
        await Unpack(new TarBuilder()
            .Directory("etc")
            .File("etc/.wh.passwd", "")
            .Directory("var/cache")
            .File("var/cache/.wh..wh..opq", "")
            .File("var/cache/fresh", "new"));

        var whiteout = StatOf("etc/passwd");
        Assert.Equal(0x2000u, whiteout.Mode & 0xF000); // character device
        Assert.Equal(0ul, whiteout.Rdev);
        Assert.False(File.Exists(At("etc/.wh.passwd")));
        Assert.Equal("y"u8.ToArray(), Sys.LGetXattr(At("var/cache"), "trusted.overlay.opaque"));
        Assert.False(File.Exists(At("var/cache/.wh..wh..opq")));
        Assert.True(File.Exists(At("var/cache/fresh")));
    }

    [Fact]
    public async Task A_later_entry_replaces_an_earlier_one_without_following_it()
    {
        var secret = Path.Combine(_outside, "secret");
        await Unpack(new TarBuilder()
            .Symlink("victim", secret) // absolute: fine inside a container's root, but must never be written through
            .File("victim", "replaced")
            .File("dir-to-be", "x")
            .Directory("dir-to-be"));

        Assert.Equal("untouched", File.ReadAllText(secret));
        Assert.Null(new FileInfo(At("victim")).LinkTarget);
        Assert.Equal("replaced", File.ReadAllText(At("victim")));
        Assert.True(Directory.Exists(At("dir-to-be")));
    }

    [Fact]
    public async Task A_whiteout_that_names_no_file_is_refused_naming_the_entry()
    {
        var error = await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder().Directory("a").File("a/.wh.", "")));
        Assert.Contains("whiteout 'a/.wh.' names no file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_name_longer_than_name_max_is_refused_naming_the_entry()
    {
        var name = "dir/" + new string('n', 300);
        var error = await Assert.ThrowsAsync<ImageFormatException>(() => Unpack(new TarBuilder().File(name, "x")));
        Assert.StartsWith("entry 'dir/nnnn", error.Message, StringComparison.Ordinal);
        Assert.Contains("' has a name of 300 bytes; Linux allows 255", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_path_longer_than_path_max_unpacks_and_a_later_entry_replaces_it()
    {
        var deep = string.Join('/', Enumerable.Repeat(new string('d', 100), 60)); // 6 KB
        await Unpack(new TarBuilder().File(deep + "/leaf", "deep"));
        Assert.True(Directory.Exists(At(new string('d', 100))));

        await Unpack(new TarBuilder().File(deep + "/leaf", "deep").File(new string('d', 100), "now a file"));
        Assert.Equal("now a file", File.ReadAllText(At(new string('d', 100))));
    }

    [Fact]
    public async Task A_failing_entry_is_named_in_the_error()
    {
        // A regular file where the next entry wants a directory, reached through a hard link's parent walk.
        var error = await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder().File("a", "x").File("a/b", "y")));
        Assert.Contains("'a/b' walks through 'a', which is not a directory", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../escape", "escapes the layer root")]
    [InlineData("a/../../escape", "escapes the layer root")]
    [InlineData("/etc/escape", "is an absolute path")]
    public async Task Names_that_leave_the_root_are_refused(string name, string reason)
    {
        var error = await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder().File(name, "x")));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        AssertNothingEscaped();
    }

    [Fact]
    public async Task Writing_through_a_symlink_planted_earlier_is_refused()
    {
        var error = await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder()
            .Symlink("evil", _outside)
            .File("evil/secret", "pwned")));

        Assert.Contains("'evil/secret' walks through the symlink 'evil'", error.Message, StringComparison.Ordinal);
        AssertNothingEscaped();
    }

    [Fact]
    public async Task A_relative_symlink_to_the_root_is_walked_neither()
    {
        var error = await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder()
            .Directory("a")
            .Symlink("a/up", "..")
            .File("a/up/a/up/x", "x")));
        // Both the refused entry and the directory where the walk met the link.
        Assert.Contains("'a/up/a/up/x' walks through the symlink 'a/up'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Whiteouts_through_a_symlink_are_refused()
    {
        await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder()
            .Symlink("evil", _outside)
            .File("evil/.wh.secret", "")));
        Assert.True(File.Exists(Path.Combine(_outside, "secret")));
    }

    [Theory]
    [InlineData("a/link", "../../outside")]
    [InlineData("link", "..")]
    [InlineData("a/b/link", "../../../x")]
    public async Task Symlinks_pointing_outside_the_root_are_refused(string name, string target)
    {
        var error = await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder().Symlink(name, target)));
        Assert.Contains("points outside the layer root", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../outside/secret", "escapes the layer root")]
    [InlineData("/etc/passwd", "is an absolute path")]
    [InlineData("missing", "not in this layer")]
    public async Task Hard_links_outside_the_layer_are_refused(string target, string reason)
    {
        var error = await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder().HardLink("link", target)));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        Assert.Equal(1, new FileInfo(Path.Combine(_outside, "secret")).Length > 0 ? 1 : 0);
    }

    [Fact]
    public async Task A_hard_link_through_a_symlink_is_refused()
    {
        var error = await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder()
            .Symlink("out", _outside)
            .HardLink("stolen", "out/secret")));
        Assert.Contains("walks through the symlink 'out'", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(At("stolen")));
    }

    [Theory]
    [InlineData(TarEntryType.CharacterDevice, 1, 3)]
    [InlineData(TarEntryType.CharacterDevice, 0, 0)]
    [InlineData(TarEntryType.BlockDevice, 8, 0)]
    public async Task Device_nodes_are_refused(TarEntryType type, int major, int minor)
    {
        var error = await Assert.ThrowsAsync<UnsafeLayerException>(() => Unpack(new TarBuilder().Device("dev/node", type, major, minor)));
        Assert.Contains("device node", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(At("dev/node")));
    }

    [Theory]
    [InlineData("../x", "escapes the layer root")]
    [InlineData("a/../../x", "escapes the layer root")]
    [InlineData("a/b/../../../x", "escapes the layer root")]
    [InlineData("/abs", "is an absolute path")]
    public void Normalize_refuses_escapes(string name, string reason)
    {
        var error = Assert.Throws<UnsafeLayerException>(() => LayerUnpacker.Normalize(name, "entry"));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("./", "")]
    [InlineData("./etc/", "etc")]
    [InlineData("a/./b//c", "a/b/c")]
    [InlineData("a/b/../c", "a/c")]
    public void Normalize_cleans_names(string name, string expected)
    {
        Assert.Equal(expected, LayerUnpacker.Normalize(name, "entry"));
    }

    private void AssertNothingEscaped()
    {
        Assert.Equal(["secret"], Directory.EnumerateFileSystemEntries(_outside).Select(Path.GetFileName));
        Assert.Equal("untouched", File.ReadAllText(Path.Combine(_outside, "secret")));
        Assert.Equal(["layer", "outside"], Directory.EnumerateFileSystemEntries(_sandbox).Select(Path.GetFileName).Order());
    }

    private void AssertStat(string relative, uint mode, uint uid, uint gid)
    {
        var stat = StatOf(relative);
        Assert.Equal($"{mode:x} {uid} {gid}", $"{stat.Mode:x} {stat.Uid} {stat.Gid}");
    }

    private ulong Inode(string relative) => StatOf(relative).Inode;

    private unsafe (uint Mode, uint Uid, uint Gid, ulong Inode, ulong Rdev) StatOf(string relative)
    {
        var path = Encoding.UTF8.GetBytes(At(relative) + "\0");
        Tmds.Linux.stat st;
        fixed (byte* p = path)
        {
            Assert.Equal(0, Tmds.Linux.LibC.lstat(p, &st));
        }
        return ((uint)st.st_mode, (uint)st.st_uid, (uint)st.st_gid, (ulong)st.st_ino, (ulong)st.st_rdev);
    }
}
