using System.Security.Cryptography;

namespace Graft.Weights;

/// <summary>A file Graft needs from outside the repo: where it lives upstream and its SHA-256.</summary>
public sealed record Asset(string RelativePath, string Url, string Sha256)
{
    public string FileName => Path.GetFileName(RelativePath);
}

/// <summary>
/// Finds assets offline first: a mirror folder named by GRAFT_ASSETS, a <c>shared/</c> folder beside the
/// checkout (or any ancestor of the working or app directory), the user cache (~/.cache/graft/assets),
/// and only then a download from upstream into the cache. Every file is checked against its SHA-256.
/// </summary>
public sealed class AssetResolver
{
    public const string MirrorVariable = "GRAFT_ASSETS";
    public const string CacheVariable = "GRAFT_CACHE";

    public IReadOnlyList<string> SearchRoots { get; }
    public string CacheRoot { get; }
    public bool AllowDownload { get; }
    static readonly Dictionary<string, string> VerifiedHashes = new();

    public AssetResolver(IEnumerable<string>? searchRoots = null, string? cacheRoot = null, bool? allowDownload = null)
    {
        CacheRoot = cacheRoot ?? DefaultCacheRoot();
        SearchRoots = (searchRoots ?? DefaultSearchRoots()).ToList();
        AllowDownload = allowDownload ?? Environment.GetEnvironmentVariable("GRAFT_OFFLINE") is null;
    }

    public static AssetResolver Default { get; } = new();

    public static string DefaultCacheRoot()
    {
        var explicitRoot = Environment.GetEnvironmentVariable(CacheVariable);
        if (!string.IsNullOrEmpty(explicitRoot)) return explicitRoot;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var baseDir = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(baseDir, "graft");
    }

    /// <summary>GRAFT_ASSETS, then every <c>shared/</c> folder found walking up from the working and app directories.</summary>
    public static IEnumerable<string> DefaultSearchRoots()
    {
        var mirror = Environment.GetEnvironmentVariable(MirrorVariable);
        if (!string.IsNullOrEmpty(mirror)) yield return mirror;
        var seen = new HashSet<string>();
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var shared = Path.Combine(dir.FullName, "shared");
                if (Directory.Exists(shared) && seen.Add(shared)) yield return shared;
            }
    }

    /// <summary>Where the asset would be found locally, without checking or downloading (for <c>graft models</c>).</summary>
    public string? FindLocal(Asset asset) =>
        SearchRoots.Select(r => Path.Combine(r, asset.RelativePath)).Append(CachePath(asset)).FirstOrDefault(File.Exists);

    /// <summary>The local path of a verified copy of the asset, downloading it if allowed.</summary>
    public string Resolve(Asset asset)
    {
        foreach (var candidate in SearchRoots.Select(r => Path.Combine(r, asset.RelativePath)).Append(CachePath(asset)))
        {
            if (!File.Exists(candidate)) continue;
            var actual = Sha256Of(candidate);
            if (actual == asset.Sha256) return candidate;
            throw new GraftException($"{candidate} has SHA-256 {actual}, expected {asset.Sha256}.",
                $"Delete it and fetch {asset.Url} again.");
        }
        if (!AllowDownload) throw Missing(asset, "downloads are disabled (GRAFT_OFFLINE)");
        return Download(asset);
    }

    string CachePath(Asset asset) => Path.Combine(CacheRoot, "assets", asset.RelativePath);

    string Download(Asset asset)
    {
        var target = CachePath(asset);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var temp = target + $".{Environment.ProcessId}.part";
        try
        {
            using (var http = new HttpClient { Timeout = TimeSpan.FromMinutes(10) })
            using (var response = http.GetAsync(asset.Url, HttpCompletionOption.ResponseHeadersRead).GetAwaiter().GetResult())
            {
                response.EnsureSuccessStatusCode();
                using var file = File.Create(temp);
                response.Content.ReadAsStream().CopyTo(file);
            }
            var actual = Sha256Of(temp);
            if (actual != asset.Sha256)
                throw new GraftException($"The download of {asset.Url} has SHA-256 {actual}, expected {asset.Sha256}.",
                    $"The upstream file changed or the download was corrupted; place a correct copy at {target}.");
            File.Move(temp, target, overwrite: true);
            return target;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            throw Missing(asset, $"the download failed ({e.Message})");
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    GraftException Missing(Asset asset, string why) => new(
        $"{asset.FileName} is not available offline and {why}.",
        $"Download {asset.Url} (SHA-256 {asset.Sha256}) to {CachePath(asset)}, or set {MirrorVariable} to a folder holding {asset.RelativePath}.");

    static string Sha256Of(string path)
    {
        var info = new FileInfo(path);
        var key = $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}";
        lock (VerifiedHashes)
            if (VerifiedHashes.TryGetValue(key, out var known)) return known;
        using var stream = File.OpenRead(path);
        var hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        lock (VerifiedHashes) VerifiedHashes[key] = hash;
        return hash;
    }
}
