using System.Security.Cryptography;

namespace Graft.Weights;

/// <summary>
/// A file Graft needs from outside the repo: its path in an asset mirror, where it lives upstream, and its hash
/// (MD5 or SHA-256, told apart by length as Keras's get_file does; null where upstream publishes none, and the
/// file is then checked by its structure when read). <see cref="KerasCache"/>: Keras downloads it into
/// ~/.keras/models/ too, and a Keras user's copy there is used in place.
/// </summary>
public sealed record Asset(string RelativePath, string Url, string? Hash)
{
    public string FileName => Path.GetFileName(RelativePath);
    public bool KerasCache { get; init; }
}

/// <summary>
/// Finds assets offline first: a mirror folder named by GRAFT_ASSETS, a <c>shared/</c> folder beside the
/// checkout (or any ancestor of the working or app directory), Keras's own cache for Keras's files
/// ($KERAS_HOME/models, ~/.keras/models), the user cache (~/.cache/graft/assets), and only then a download from
/// upstream into the cache. Every file is checked against its hash where one is known.
/// </summary>
public sealed class AssetResolver
{
    public const string MirrorVariable = "GRAFT_ASSETS";
    public const string CacheVariable = "GRAFT_CACHE";

    public IReadOnlyList<string> SearchRoots { get; }
    public string CacheRoot { get; }
    public IReadOnlyList<string> KerasCacheFolders { get; }
    public bool AllowDownload { get; }
    static readonly Dictionary<string, string> VerifiedHashes = new();

    public AssetResolver(IEnumerable<string>? searchRoots = null, string? cacheRoot = null, bool? allowDownload = null,
        IEnumerable<string>? kerasCacheFolders = null)
    {
        CacheRoot = cacheRoot ?? DefaultCacheRoot();
        SearchRoots = (searchRoots ?? DefaultSearchRoots()).ToList();
        KerasCacheFolders = (kerasCacheFolders ?? DefaultKerasCacheFolders()).ToList();
        AllowDownload = allowDownload ?? Environment.GetEnvironmentVariable("GRAFT_OFFLINE") is null;
    }

    /// <summary>Where Keras keeps downloaded weights: $KERAS_HOME/models, ~/.keras/models, and /tmp/.keras/models (its fallback).</summary>
    public static IEnumerable<string> DefaultKerasCacheFolders()
    {
        var kerasHome = Environment.GetEnvironmentVariable("KERAS_HOME");
        if (!string.IsNullOrEmpty(kerasHome)) yield return Path.Combine(kerasHome, "models");
        yield return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".keras", "models");
        yield return Path.Combine(Path.GetTempPath(), ".keras", "models");
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
    public string? FindLocal(Asset asset) => LocalCandidates(asset).FirstOrDefault(File.Exists);

    IEnumerable<string> LocalCandidates(Asset asset) => SearchRoots.Select(r => Path.Combine(r, asset.RelativePath))
        .Concat(asset.KerasCache ? KerasCacheFolders.Select(k => Path.Combine(k, asset.FileName)) : [])
        .Append(CachePath(asset));

    /// <summary>The local path of a verified copy of the asset, downloading it if allowed.</summary>
    public string Resolve(Asset asset)
    {
        foreach (var candidate in LocalCandidates(asset))
        {
            if (!File.Exists(candidate)) continue;
            var actual = HashOf(candidate, asset.Hash);
            if (actual == asset.Hash) return candidate;
            throw new GraftException($"{candidate} has {HashName(asset.Hash)} {actual}, expected {asset.Hash}.",
                $"Delete it and fetch {asset.Url} again.");
        }
        if (!AllowDownload) throw Missing(asset, "downloads are disabled (GRAFT_OFFLINE)");
        return Download(asset);
    }

    /// <summary>The file's hash in the algorithm the expected hash implies (SHA-256 when none is expected).</summary>
    static string? HashOf(string path, string? expected) => expected is null ? null : expected.Length == 32 ? Md5Of(path) : Sha256Of(path);
    static string HashName(string? hash) => hash?.Length == 32 ? "MD5" : "SHA-256";

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
            var actual = HashOf(temp, asset.Hash);
            if (actual != asset.Hash)
                throw new GraftException($"The download of {asset.Url} has {HashName(asset.Hash)} {actual}, expected {asset.Hash}.",
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
        $"Download {asset.Url}{(asset.Hash is null ? "" : $" ({HashName(asset.Hash)} {asset.Hash})")} to {CachePath(asset)}" +
        (asset.KerasCache ? $" or to Keras's cache {KerasCacheFolders.First()}" : "") + $", or set {MirrorVariable} to a folder holding {asset.RelativePath}.");

    static string Md5Of(string path) => HashFile(path, md5: true);

    /// <summary>The file's SHA-256 (remembered per path, size and time: weight files are hashed once per process).</summary>
    public static string Sha256Of(string path) => HashFile(path, md5: false);

    static string HashFile(string path, bool md5)
    {
        var info = new FileInfo(path);
        var key = $"{(md5 ? "md5" : "sha256")}|{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}";
        lock (VerifiedHashes)
            if (VerifiedHashes.TryGetValue(key, out var known)) return known;
        using var stream = File.OpenRead(path);
        var hash = Convert.ToHexStringLower(md5 ? MD5.HashData(stream) : SHA256.HashData(stream));
        lock (VerifiedHashes) VerifiedHashes[key] = hash;
        return hash;
    }
}
