using System.Globalization;

namespace Berth.Runtime.Spec;

/// <summary>
/// The image's <c>/etc/passwd</c> and <c>/etc/group</c>, parsed, to resolve user and group names as the container
/// will see them. Read by the caller from the container's rootfs; malformed lines are skipped, as libc does.
/// </summary>
public sealed class UserDatabase
{
    public static readonly UserDatabase Empty = new([], []);

    private readonly List<(string Name, uint Uid, uint Gid)> _users;
    private readonly List<(string Name, uint Gid, string[] Members)> _groups;

    private UserDatabase(List<(string, uint, uint)> users, List<(string, uint, string[])> groups)
    {
        _users = users;
        _groups = groups;
    }

    public static UserDatabase Parse(string? passwd, string? group)
    {
        var users = new List<(string, uint, uint)>();
        foreach (var fields in Lines(passwd))
        {
            if (fields.Length >= 4 && TryId(fields[2], out var uid) && TryId(fields[3], out var gid)) users.Add((fields[0], uid, gid));
        }
        var groups = new List<(string, uint, string[])>();
        foreach (var fields in Lines(group))
        {
            if (fields.Length >= 3 && TryId(fields[2], out var gid))
                groups.Add((fields[0], gid, fields.Length > 3 ? fields[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : []));
        }
        return new UserDatabase(users, groups);
    }

    public (string Name, uint Uid, uint Gid)? UserByName(string name) => _users.Find(u => u.Name == name) is { Name: not null } u ? u : null;

    public (string Name, uint Uid, uint Gid)? UserById(uint uid) => _users.Find(u => u.Uid == uid) is { Name: not null } u ? u : null;

    public uint? GroupByName(string name) => _groups.Find(g => g.Name == name) is { Name: not null } g ? g.Gid : null;

    /// <summary>The groups that list <paramref name="userName"/> as a member.</summary>
    public IEnumerable<uint> GroupsOf(string userName) => _groups.Where(g => g.Members.Contains(userName, StringComparer.Ordinal)).Select(g => g.Gid);

    private static IEnumerable<string[]> Lines(string? text) =>
        (text ?? "").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.Split(':'));

    internal static bool TryId(string text, out uint id) => uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out id);
}
