namespace Berth.ImageStore.Distribution;

/// <summary>One <c>WWW-Authenticate</c> challenge: its scheme and parameters (RFC 7235).</summary>
internal sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public string? Realm => Parameters.GetValueOrDefault("realm");
    public string? Service => Parameters.GetValueOrDefault("service");
    public string? Scope => Parameters.GetValueOrDefault("scope");

    /// <summary>Parses <c>Bearer realm="https://auth",service="registry",scope="repository:a:pull"</c>.</summary>
    public static AuthChallenge? Parse(string header)
    {
        var text = header.AsSpan().Trim();
        var space = text.IndexOf(' ');
        if (space <= 0) return text.IsEmpty ? null : new AuthChallenge(text.ToString(), new Dictionary<string, string>());
        var scheme = text[..space].ToString();
        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var rest = text[(space + 1)..];
        while (!rest.IsEmpty)
        {
            rest = rest.TrimStart(" ,");
            var equals = rest.IndexOf('=');
            if (equals <= 0) break;
            var key = rest[..equals].Trim().ToString();
            rest = rest[(equals + 1)..];
            string value;
            if (!rest.IsEmpty && rest[0] == '"')
            {
                var builder = new System.Text.StringBuilder();
                var i = 1;
                for (; i < rest.Length && rest[i] != '"'; i++)
                {
                    if (rest[i] == '\\' && i + 1 < rest.Length) i++;
                    builder.Append(rest[i]);
                }
                value = builder.ToString();
                rest = i < rest.Length ? rest[(i + 1)..] : [];
            }
            else
            {
                var comma = rest.IndexOf(',');
                value = (comma < 0 ? rest : rest[..comma]).Trim().ToString();
                rest = comma < 0 ? [] : rest[(comma + 1)..];
            }
            parameters[key] = value;
        }
        return new AuthChallenge(scheme, parameters);
    }
}
