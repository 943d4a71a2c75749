using Berth.Runtime.Containers;

namespace Berth.Runtime.Tests;

/// <summary>An image volume starts as a copy of the image's tree at its path, resolved inside the rootfs.</summary>
public sealed partial class ImageVolumeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("berth-rootfs-").FullName;
    private readonly string _volume = Directory.CreateTempSubdirectory("berth-volume-").FullName;

    public void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_volume, recursive: true);
    }

    [Fact]
    public void Symbolic_links_resolve_with_the_rootfs_as_their_root()
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc", "app"));
        File.CreateSymbolicLink(Path.Combine(_root, "absolute"), "/etc");
        File.CreateSymbolicLink(Path.Combine(_root, "climbing"), "../../../../etc");
        File.CreateSymbolicLink(Path.Combine(_root, "etc", "relative"), "app");
        File.CreateSymbolicLink(Path.Combine(_root, "loop"), "loop");

        Assert.Equal(Path.Combine(_root, "etc", "app"), ImageVolume.ResolveInRoot(_root, "/absolute/app"));
        Assert.Equal(Path.Combine(_root, "etc", "app"), ImageVolume.ResolveInRoot(_root, "/climbing/app"));
        Assert.Equal(Path.Combine(_root, "etc", "app"), ImageVolume.ResolveInRoot(_root, "/etc/relative"));
        Assert.Equal(Path.Combine(_root, "etc"), ImageVolume.ResolveInRoot(_root, "/../../etc/./app/.."));
        Assert.Throws<ContainerRuntimeException>(() => ImageVolume.ResolveInRoot(_root, "/loop/x"));
    }

    [Fact]
    public void The_tree_is_copied_with_owners_modes_times_and_links()
    {
        var data = Path.Combine(_root, "var", "lib", "db");
        Directory.CreateDirectory(Path.Combine(data, "sub"));
        File.WriteAllText(Path.Combine(data, "seed"), "seeded");
        Run("ln", Path.Combine(data, "seed"), Path.Combine(data, "sub", "hard"));
        File.CreateSymbolicLink(Path.Combine(data, "sub", "soft"), "../seed");
        File.SetUnixFileMode(Path.Combine(data, "seed"), UnixFileMode.UserRead | UnixFileMode.GroupRead);
        Chown(Path.Combine(data, "seed"), 1000, 1001);
        Chown(data, 999, 999);
        File.SetUnixFileMode(data, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var modified = new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(Path.Combine(data, "seed"), modified);

        ImageVolume.Populate(_root, "/var/lib/db", _volume);

        var seed = Path.Combine(_volume, "seed");
        Assert.Equal("seeded", File.ReadAllText(seed));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead, File.GetUnixFileMode(seed));
        Assert.Equal((1000u, 1001u), Owner(seed));
        Assert.Equal((999u, 999u), Owner(_volume));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_volume));
        Assert.Equal(modified, File.GetLastWriteTimeUtc(seed));
        Assert.Equal("../seed", new FileInfo(Path.Combine(_volume, "sub", "soft")).LinkTarget);
        Assert.Equal(Inode(seed), Inode(Path.Combine(_volume, "sub", "hard")));
    }

    [Fact]
    public void Extended_attributes_are_copied_and_file_capabilities_survive_the_owner_change()
    {
        var data = Path.Combine(_root, "srv");
        Directory.CreateDirectory(data);
        var tool = Path.Combine(data, "tool");
        File.WriteAllText(tool, "#!/bin/sh\n");
        Chown(tool, 1000, 1000); // the copy is chowned too, which drops capabilities set before it
        // VFS_CAP_REVISION_2 with the effective flag; permitted: CAP_NET_BIND_SERVICE (10).
        byte[] capability = [0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        SetAttribute(tool, "security.capability", capability);
        SetAttribute(tool, "user.origin", "image"u8.ToArray());
        SetAttribute(data, "user.layout", "v2"u8.ToArray());

        ImageVolume.Populate(_root, "/srv", _volume);

        var copy = Path.Combine(_volume, "tool");
        Assert.Equal(capability, GetAttribute(copy, "security.capability"));
        Assert.Equal("image"u8.ToArray(), GetAttribute(copy, "user.origin"));
        Assert.Equal("v2"u8.ToArray(), GetAttribute(_volume, "user.layout"));
        Assert.Equal((1000u, 1000u), Owner(copy));
    }

    [Fact]
    public void Nothing_at_the_path_leaves_the_volume_empty_and_a_file_there_is_refused()
    {
        ImageVolume.Populate(_root, "/missing", _volume);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_volume));

        File.WriteAllText(Path.Combine(_root, "file"), "x");
        var refused = Assert.Throws<ContainerRuntimeException>(() => ImageVolume.Populate(_root, "/file", _volume));
        Assert.Contains("/file", refused.Message, StringComparison.Ordinal);
    }

    private static void Chown(string path, int uid, int gid) => Run("chown", "-h", $"{uid}:{gid}", path);

    private static void Run(string program, params string[] args)
    {
        using var process = System.Diagnostics.Process.Start(program, args)!;
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    private static void SetAttribute(string path, string name, byte[] value)
    {
        if (Lsetxattr(path, name, value, (nuint)value.Length, 0) != 0)
            throw new InvalidOperationException($"lsetxattr {name} {path}: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
    }

    private static byte[] GetAttribute(string path, string name)
    {
        var buffer = new byte[256];
        var size = Lgetxattr(path, name, buffer, (nuint)buffer.Length);
        if (size < 0) throw new InvalidOperationException($"lgetxattr {name} {path}: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        return buffer[..(int)size];
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "lsetxattr", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int Lsetxattr(string path, string name, byte[] value, nuint size, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial nint Lgetxattr(string path, string name, byte[] value, nuint size);

    private static (uint Uid, uint Gid) Owner(string path)
    {
        var fields = StatFields(path, "%u %g");
        return (uint.Parse(fields[0], System.Globalization.CultureInfo.InvariantCulture), uint.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static string Inode(string path) => StatFields(path, "%i")[0];

    private static string[] StatFields(string path, string format)
    {
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", format, path]) { RedirectStandardOutput = true })!;
        var output = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return output.Trim().Split(' ');
    }
}
