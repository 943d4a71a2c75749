using System.Text;

namespace Berth.ImageStore.Tests;

/// <summary>Tar bytes written by hand, for what TarWriter cannot write (PAX values that are not UTF-8).</summary>
internal static class RawTar
{
    public static byte[] PaxFile(string name, byte[] content, string paxKey, byte[] paxValue) =>
        Files((name, content, [(paxKey, paxValue)]));

    /// <summary>Regular files, each after a PAX header of its records when it has any.</summary>
    public static byte[] Files(params (string Name, byte[] Content, (string Key, byte[] Value)[] Pax)[] files)
    {
        using var tar = new MemoryStream();
        foreach (var (name, content, pax) in files)
        {
            if (pax.Length > 0)
            {
                var records = pax.SelectMany(r => Record(r.Key, r.Value)).ToArray();
                WriteHeader(tar, "PaxHeaders/" + name, records.Length, (byte)'x');
                WritePadded(tar, records);
            }
            WriteHeader(tar, name, content.Length, (byte)'0');
            WritePadded(tar, content);
        }
        tar.Write(new byte[1024]);
        return tar.ToArray();
    }

    // "<length> <key>=<value>\n", where the length counts itself.
    private static byte[] Record(string key, byte[] value)
    {
        var body = Encoding.UTF8.GetByteCount($" {key}=") + value.Length + 1;
        var digits = 1;
        while ((body + digits).ToString(System.Globalization.CultureInfo.InvariantCulture).Length != digits) digits++;
        var length = body + digits;
        return [.. Encoding.UTF8.GetBytes($"{length} {key}="), .. value, (byte)'\n'];
    }

    private static void WriteHeader(Stream tar, string name, long size, byte type)
    {
        var header = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(header, 0);
        Octal("0000644", header, 100);
        Octal("0000000", header, 108);
        Octal("0000000", header, 116);
        Octal(Convert.ToString(size, 8).PadLeft(11, '0'), header, 124);
        Octal("00000000000", header, 136);
        header[156] = type;
        Encoding.ASCII.GetBytes("ustar\0" + "00").CopyTo(header, 257);
        for (var i = 148; i < 156; i++) header[i] = (byte)' ';
        var checksum = header.Sum(b => b);
        Encoding.ASCII.GetBytes(Convert.ToString(checksum, 8).PadLeft(6, '0') + "\0 ").CopyTo(header, 148);
        tar.Write(header);
    }

    private static void Octal(string digits, byte[] header, int offset) => Encoding.ASCII.GetBytes(digits + "\0").CopyTo(header, offset);

    private static void WritePadded(Stream tar, byte[] data)
    {
        tar.Write(data);
        tar.Write(new byte[(512 - data.Length % 512) % 512]);
    }
}
