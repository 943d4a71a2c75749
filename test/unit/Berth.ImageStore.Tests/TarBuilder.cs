using System.Formats.Tar;
using System.Text;

namespace Berth.ImageStore.Tests;

/// <summary>Builds layer tars in memory, hostile ones included (TarWriter writes whatever names it is given).</summary>
internal sealed class TarBuilder
{
    public static readonly DateTimeOffset Mtime = new(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);
    private readonly List<PaxTarEntry> _entries = [];

    public TarBuilder File(string name, string content, UnixFileMode mode = (UnixFileMode)0x1A4, int uid = 0, int gid = 0,
        IReadOnlyDictionary<string, string>? xattrs = null)
    {
        var attributes = xattrs?.ToDictionary(x => "SCHILY.xattr." + x.Key, x => x.Value) ?? [];
        _entries.Add(new PaxTarEntry(TarEntryType.RegularFile, name, attributes)
        {
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
            Mode = mode, Uid = uid, Gid = gid, ModificationTime = Mtime,
        });
        return this;
    }

    public TarBuilder Directory(string name, UnixFileMode mode = (UnixFileMode)0x1ED, int uid = 0, int gid = 0) =>
        Add(new PaxTarEntry(TarEntryType.Directory, name) { Mode = mode, Uid = uid, Gid = gid, ModificationTime = Mtime });

    public TarBuilder Symlink(string name, string target) =>
        Add(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0x1FF, ModificationTime = Mtime });

    public TarBuilder HardLink(string name, string target) =>
        Add(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target, Mode = (UnixFileMode)0x1A4, ModificationTime = Mtime });

    public TarBuilder Fifo(string name) =>
        Add(new PaxTarEntry(TarEntryType.Fifo, name) { Mode = (UnixFileMode)0x1A4, ModificationTime = Mtime });

    public TarBuilder Device(string name, TarEntryType type, int major, int minor) =>
        Add(new PaxTarEntry(type, name) { DeviceMajor = major, DeviceMinor = minor, Mode = (UnixFileMode)0x1B6, ModificationTime = Mtime });

    private TarBuilder Add(PaxTarEntry entry)
    {
        _entries.Add(entry);
        return this;
    }

    public MemoryStream Build()
    {
        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var entry in _entries) writer.WriteEntry(entry);
        }
        stream.Position = 0;
        return stream;
    }
}
