using Berth.Nri.Api;

namespace Berth.Nri.Adaptation;

/// <summary>
/// NRI's ownership rules (pkg/api owners.go): within one event, a field of a container (or one entry of a compound
/// field: a mount by destination, an env var by name) is set by one plugin only. A second plugin setting it is a
/// conflict that fails the event; a plugin that removed an entry may set it again, no other plugin may.
/// </summary>
internal sealed class FieldOwners
{
    private const string RemovalMark = "-";
    private readonly Dictionary<(string Container, Field Field, string Key), string> _owners = [];

    public void Claim(string container, Field field, string key, string plugin)
    {
        if (_owners.TryGetValue((container, field, key), out var other))
        {
            var removedBy = other.StartsWith(RemovalMark, StringComparison.Ordinal) ? other[1..] : null;
            if (removedBy != plugin) throw Conflict(field, key, plugin, removedBy ?? other);
        }
        _owners[(container, field, key)] = plugin;
    }

    public void Claim(string container, Field field, string plugin) => Claim(container, field, "", plugin);

    /// <summary>Who owns what, as ValidateContainerAdjustment carries it: simple fields by number, compound ones by key.</summary>
    public OwningPlugins ToProto()
    {
        var owners = new OwningPlugins();
        foreach (var ((container, field, key), plugin) in _owners)
        {
            if (!owners.Owners.TryGetValue(container, out var fields)) owners.Owners[container] = fields = new Api.FieldOwners();
            if (key.Length == 0)
            {
                fields.Simple[(int)field] = plugin;
                continue;
            }
            if (!fields.Compound.TryGetValue((int)field, out var compound)) fields.Compound[(int)field] = compound = new CompoundFieldOwners();
            compound.Owners[key] = plugin;
        }
        return owners;
    }

    /// <summary>Marks an entry removed by <paramref name="plugin"/>: no other plugin sets it from here.</summary>
    public void Clear(string container, Field field, string key, string plugin) => _owners[(container, field, key)] = RemovalMark + plugin;

    private static NriException Conflict(Field field, string key, string plugin, string other) =>
        new($"NRI plugins \"{plugin}\" and \"{other}\" both tried to set {ProtoName(field)}{(key.Length > 0 ? " " + key : "")}");

    /// <summary>The field's name as api.proto spells it (CPUShares, not the C# Cpushares), as NRI's own errors do.</summary>
    private static string ProtoName(Field field) =>
        ApiReflection.Descriptor.EnumTypes.First(e => e.ClrType == typeof(Field)).FindValueByNumber((int)field)?.Name ?? field.ToString();
}
