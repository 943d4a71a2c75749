namespace Berth.ImageStore.Images;

/// <summary>
/// What pulls under way use and what they wrote: blobs by digest, snapshots by chain ID. Garbage collection leaves
/// whatever a pull under way has claimed, and a failed pull takes back only what it wrote and nobody else claims,
/// so a refused image leaves nothing and a concurrent pull never loses a blob it counted on.
/// </summary>
internal sealed class ContentClaims
{
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public Claim Begin() => new(this);

    /// <summary>
    /// Runs <paramref name="release"/> (a removal) unless a pull other than <paramref name="except"/> claims the key, with
    /// claims held off meanwhile: a pull claims before it looks, so it either keeps the content from this removal or
    /// finds it gone and fetches it again, never sees it and then loses it. <paramref name="release"/> must be quick.
    /// </summary>
    public bool ReleaseUnlessClaimed(string key, Action release, Claim? except = null)
    {
        lock (_lock)
        {
            if (_counts.GetValueOrDefault(key) > (except is not null && except.Uses(key) ? 1 : 0)) return false;
            release();
            return true;
        }
    }

    public static string Snapshot(string chainId) => "snapshot:" + chainId;

    /// <summary>One pull's claims, released when it is disposed.</summary>
    public sealed class Claim(ContentClaims claims) : IDisposable
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);
        private readonly HashSet<string> _written = new(StringComparer.Ordinal);

        /// <summary>Claims a blob or snapshot before looking whether it exists.</summary>
        public void Use(string key)
        {
            lock (claims._lock)
            {
                if (_used.Add(key)) claims._counts[key] = claims._counts.GetValueOrDefault(key) + 1;
            }
        }

        /// <summary>Notes that this pull made it, so a failure takes it back.</summary>
        public void Wrote(string key)
        {
            lock (claims._lock) _written.Add(key);
        }

        public IReadOnlyList<string> Written
        {
            get
            {
                lock (claims._lock) return [.. _written];
            }
        }

        internal bool Uses(string key) => _used.Contains(key);

        public void Dispose()
        {
            lock (claims._lock)
            {
                foreach (var key in _used)
                {
                    if (--claims._counts[key] == 0) claims._counts.Remove(key);
                }
                _used.Clear();
            }
        }
    }
}
