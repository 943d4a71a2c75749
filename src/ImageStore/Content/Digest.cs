using System.Diagnostics.CodeAnalysis;

namespace Berth.ImageStore.Content;

/// <summary>An OCI content digest. Only sha256 is accepted, which is what every registry and image uses.</summary>
public readonly record struct Digest
{
    public const string Sha256Prefix = "sha256:";

    private Digest(string hex) => Hex = hex;

    /// <summary>64 lowercase hex characters.</summary>
    public string Hex { get; }

    public override string ToString() => Sha256Prefix + Hex;

    public static Digest Parse(string text) =>
        TryParse(text, out var digest) ? digest : throw new FormatException($"'{text}' is not a sha256 digest (sha256:<64 hex>)");

    public static bool TryParse([NotNullWhen(true)] string? text, out Digest digest)
    {
        digest = default;
        if (text is null || !text.StartsWith(Sha256Prefix, StringComparison.Ordinal) || text.Length != Sha256Prefix.Length + 64)
            return false;
        var hex = text.AsSpan(Sha256Prefix.Length);
        foreach (var c in hex)
        {
            if (!char.IsAsciiHexDigitLower(c)) return false;
        }
        digest = new Digest(text[Sha256Prefix.Length..]);
        return true;
    }

    public static Digest FromHash(ReadOnlySpan<byte> sha256) => new(Convert.ToHexStringLower(sha256));

    public static Digest Compute(ReadOnlySpan<byte> data) => FromHash(System.Security.Cryptography.SHA256.HashData(data));
}
