using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;

namespace Graft.Weights;

/// <summary>
/// A file Graft needs from outside the repo: its path in an asset mirror, where it lives upstream, and its hash
/// (MD5 or SHA-256, told apart by length as Keras's get_file does; null where upstream publishes none, and the
/// file is then checked by its structure when read). <see cref="KerasCache"/>: Keras downloads it into
/// ~/.keras/models/ too, and a Keras user's copy there is used in place (when its hash matches).
/// </summary>
public sealed record Asset(string RelativePath, string Url, string? Hash)
{
    public string FileName => Path.GetFileName(RelativePath);
    public bool KerasCache { get; init; }
}

/// <summary>How far a download has got: bytes written so far and the size the server announced (null if none).</summary>
public readonly record struct AssetDownloadProgress(Asset Asset, long BytesReceived, long? TotalBytes);

/// <summary>
/// Finds assets offline first: a mirror folder named by GRAFT_ASSETS, the <c>shared/</c> folder beside the
/// checkout Graft was built in, Keras's own cache for Keras's files
/// ($KERAS_HOME/models, ~/.keras/models, /tmp/.keras/models), the user cache (~/.cache/graft/assets), and only
/// then a download from upstream into the cache. Every file is checked against its hash where one is known
/// (with a null hash any local copy is used as it is).
/// <para>
/// A wrong hash in a mirror or in Graft's own cache is refused with the file, both hashes and the fix: someone
/// put that file there, and silently working around it would hide a bad mirror. A wrong hash in Keras's cache is
/// not an error: Keras itself treats such a file as a cache miss and downloads it again, and Graft only reads
/// Keras's cache, never writes or deletes in it, so the search goes on to Graft's cache and the download, exactly
/// as if the file were absent (the mismatch is named in the error if the file then cannot be had).
/// </para>
/// <para>
/// A download goes to a temporary <c>NAME.PID-RANDOM.part</c> file beside its target, is checked (the length
/// the server announced, the hash where known) and flushed to disk, and only then atomically renamed onto the
/// target, so concurrent processes or threads fetching the same file never see or leave a partial copy; a
/// failed download deletes its part file, and part files abandoned by killed processes are removed by the next
/// download of the same file. A download that receives nothing for <see cref="StallTimeout"/> is abandoned.
/// </para>
/// </summary>
public sealed class AssetResolver
{
    public const string MirrorVariable = "GRAFT_ASSETS";
    public const string CacheVariable = "GRAFT_CACHE";

    public IReadOnlyList<string> SearchRoots { get; }
    public string CacheRoot { get; }
    public IReadOnlyList<string> KerasCacheFolders { get; }
    public bool AllowDownload { get; }
    /// <summary>Told how a download progresses (a few times a second, and once at the end); null: downloads are silent.</summary>
    public IProgress<AssetDownloadProgress>? Progress { get; }
    /// <summary>A download that gets no response or no data for this long is abandoned (default one minute).</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromMinutes(1);
    static readonly Dictionary<string, string> VerifiedHashes = new();
    static readonly TimeSpan AbandonedPartAge = TimeSpan.FromHours(1);

    public AssetResolver(IEnumerable<string>? searchRoots = null, string? cacheRoot = null, bool? allowDownload = null,
        IEnumerable<string>? kerasCacheFolders = null, IProgress<AssetDownloadProgress>? progress = null)
    {
        CacheRoot = cacheRoot ?? DefaultCacheRoot();
        SearchRoots = (searchRoots ?? DefaultSearchRoots()).ToList();
        KerasCacheFolders = (kerasCacheFolders ?? DefaultKerasCacheFolders()).ToList();
        AllowDownload = allowDownload ?? Environment.GetEnvironmentVariable("GRAFT_OFFLINE") is null;
        Progress = progress;
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

    /// <summary>
    /// GRAFT_ASSETS, then the <c>shared/</c> folder beside the checkout Graft runs from (<see cref="CheckoutMirror"/>).
    /// No other folder is a mirror: a <c>shared/</c> folder above the working or install folder is someone else's.
    /// </summary>
    public static IEnumerable<string> DefaultSearchRoots()
    {
        var mirror = Environment.GetEnvironmentVariable(MirrorVariable);
        if (!string.IsNullOrEmpty(mirror)) yield return mirror;
        if (CheckoutMirror(AppContext.BaseDirectory) is { } shared && shared != mirror) yield return shared;
    }

    /// <summary>The file that marks the root of a Graft checkout.</summary>
    const string CheckoutMarker = "Graft.slnx";

    /// <summary>
    /// The <c>shared/</c> folder beside the root of the Graft checkout that <paramref name="appFolder"/> was built in
    /// (the nearest folder above it holding Graft.slnx), where the checkout's tests, CI and <c>./graft</c> find the
    /// asset mirror; null for an installed tool or app, and where that folder is missing.
    /// </summary>
    internal static string? CheckoutMirror(string appFolder)
    {
        for (var dir = new DirectoryInfo(appFolder); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, CheckoutMarker)))
                return dir.Parent is { } beside && Directory.Exists(Path.Combine(beside.FullName, "shared")) ? Path.Combine(beside.FullName, "shared") : null;
        return null;
    }

    /// <summary>Where the asset would be found locally, without checking or downloading (for <c>graft models</c>).</summary>
    public string? FindLocal(Asset asset) => LocalCandidates(asset).Select(c => c.Path).FirstOrDefault(File.Exists);

    IEnumerable<(string Path, bool InKerasCache)> LocalCandidates(Asset asset) =>
        SearchRoots.Select(r => (Path.Combine(r, asset.RelativePath), false))
            .Concat(asset.KerasCache ? KerasCacheFolders.Select(k => (Path.Combine(k, asset.FileName), true)) : [])
            .Append((CachePath(asset), false));

    /// <summary>The local path of a verified copy of the asset, downloading it if allowed.</summary>
    public string Resolve(Asset asset)
    {
        CheckHashFormat(asset);
        string? kerasMismatch = null;
        foreach (var (candidate, inKerasCache) in LocalCandidates(asset))
        {
            if (!File.Exists(candidate)) continue;
            var actual = HashOf(candidate, asset.Hash);
            if (SameHash(actual, asset.Hash)) return candidate;
            var mismatch = $"{candidate} has {HashName(asset.Hash)} {actual}, expected {asset.Hash}";
            // Keras's cache is Keras's: a wrong copy there is a miss (Keras re-downloads it too), never ours to fix.
            if (inKerasCache) { kerasMismatch ??= mismatch; continue; }
            throw new GraftException($"{mismatch}.",
                candidate == CachePath(asset)
                    ? $"Delete it{(AllowDownload ? $" and Graft downloads {asset.Url} again" : $", or replace it with a correct copy of {asset.Url}")}."
                    : $"Replace it with a correct copy of {asset.Url}, or delete it from the mirror.");
        }
        var note = kerasMismatch is null ? "" : $" (Keras's copy is not usable: {kerasMismatch})";
        if (!AllowDownload) throw Missing(asset, $"{asset.FileName} is not on this machine{note} and downloads are disabled (GRAFT_OFFLINE).");
        return Download(asset, note);
    }

    static void CheckHashFormat(Asset asset)
    {
        if (asset.Hash is { } h && (h.Length is not (32 or 64) || !h.All(char.IsAsciiHexDigit)))
            throw new ArgumentException($"{asset.RelativePath}: hash '{h}' is neither an MD5 (32 hex digits) nor a SHA-256 (64 hex digits).", nameof(asset));
    }

    /// <summary>The file's hash in the algorithm the expected hash implies (none when none is expected).</summary>
    static string? HashOf(string path, string? expected) => expected is null ? null : expected.Length == 32 ? Md5Of(path) : Sha256Of(path);
    static string HashName(string? hash) => hash?.Length == 32 ? "MD5" : "SHA-256";
    static bool SameHash(string? actual, string? expected) => string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase);

    /// <summary>Where a download of the asset goes: <c>CACHE/assets/PATH</c>.</summary>
    public string CachePath(Asset asset) => Path.Combine(CacheRoot, "assets", asset.RelativePath);

    /// <summary>Why a download gave nothing usable; becomes a <see cref="GraftException"/> naming the file and where to put it.</summary>
    sealed class DownloadFailed(string message, bool upstreamGone = false) : Exception(message)
    {
        /// <summary>The server answered with an error status: fetching the URL again will not help.</summary>
        public bool UpstreamGone { get; } = upstreamGone;
    }

    string Download(Asset asset, string note)
    {
        var target = CachePath(asset);
        var folder = Path.GetDirectoryName(target)!;
        try { Directory.CreateDirectory(folder); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GraftException($"Cannot create the cache folder {folder} to download {asset.Url}: {OneLine(e.Message)}",
                $"Set {CacheVariable} to a writable folder, or set {MirrorVariable} to a folder holding {asset.RelativePath}.");
        }
        RemoveAbandonedParts(target);
        var temp = $"{target}.{Environment.ProcessId}-{Guid.NewGuid():N}.part";
        try
        {
            var actual = FetchAsync(asset, temp).ConfigureAwait(false).GetAwaiter().GetResult();
            if (!SameHash(actual, asset.Hash))
                throw new GraftException($"The download of {asset.Url} has {HashName(asset.Hash)} {actual}, expected {asset.Hash}.",
                    $"The upstream file changed or the download was corrupted; place a correct copy at {target}.");
            File.Move(temp, target, overwrite: true); // rename(2): atomic, and a concurrent download of the same bytes is harmless
            if (actual is not null) Remember(target, md5: asset.Hash!.Length == 32, actual);
            return target;
        }
        catch (DownloadFailed e) { throw Missing(asset, $"{asset.FileName} is not on this machine{note} and {e.Message}.", e.UpstreamGone); }
        catch (OperationCanceledException)
        {
            throw Missing(asset, $"{asset.FileName} is not on this machine{note} and the download of {asset.Url} stalled (nothing received for {StallTimeout.TotalSeconds:0.#} s).");
        }
        catch (Exception e) when (e is HttpRequestException or IOException or UnauthorizedAccessException)
        {
            throw Missing(asset, $"{asset.FileName} is not on this machine{note} and the download of {asset.Url} failed: {OneLine(e.Message)}");
        }
        finally { TryDelete(temp); }
    }

    /// <summary>Streams the URL into <paramref name="temp"/>, hashing as it goes; returns the hash (null when none is known).</summary>
    async Task<string?> FetchAsync(Asset asset, string temp)
    {
        using var handler = new SocketsHttpHandler { ConnectTimeout = StallTimeout, AutomaticDecompression = DecompressionMethods.None };
        using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("Graft");
        using var stall = new CancellationTokenSource(StallTimeout);
        using var response = await http.GetAsync(asset.Url, HttpCompletionOption.ResponseHeadersRead, stall.Token).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new DownloadFailed($"{asset.Url} answered HTTP {(int)response.StatusCode}{(string.IsNullOrEmpty(response.ReasonPhrase) ? "" : $" {response.ReasonPhrase}")}",
                upstreamGone: true);
        var total = response.Content.Headers.ContentLength;
        using var hasher = asset.Hash is null ? null
            : IncrementalHash.CreateHash(asset.Hash.Length == 32 ? HashAlgorithmName.MD5 : HashAlgorithmName.SHA256);
        long received = 0;
        await using (var body = await response.Content.ReadAsStreamAsync(stall.Token).ConfigureAwait(false))
        await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            var buffer = new byte[1 << 16];
            var clock = Stopwatch.StartNew();
            Progress?.Report(new(asset, 0, total));
            while (true)
            {
                stall.CancelAfter(StallTimeout);
                int n;
                try { n = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false); }
                catch (HttpIOException e) when (e.HttpRequestError == HttpRequestError.ResponseEnded)
                {
                    throw new DownloadFailed($"the download of {asset.Url} ended after {received}{(total is { } t ? $" of {t}" : "")} bytes (the server closed the connection)");
                }
                if (n == 0) break;
                await file.WriteAsync(buffer.AsMemory(0, n), stall.Token).ConfigureAwait(false);
                hasher?.AppendData(buffer, 0, n);
                received += n;
                if (Progress is not null && clock.ElapsedMilliseconds >= 250) { Progress.Report(new(asset, received, total)); clock.Restart(); }
            }
            file.Flush(flushToDisk: true); // on disk before the rename, so a crash cannot leave a short file under the final name
        }
        // A connection closed early is an error even where no hash could tell (HttpClient usually throws already).
        if (total is { } expected && received != expected)
            throw new DownloadFailed($"the download of {asset.Url} ended after {received} of {expected} bytes");
        Progress?.Report(new(asset, received, total ?? received));
        return hasher is null ? null : Convert.ToHexStringLower(hasher.GetHashAndReset());
    }

    /// <summary>Deletes part files of this target left by killed processes (a live download writes far more often).</summary>
    static void RemoveAbandonedParts(string target)
    {
        try
        {
            foreach (var part in Directory.EnumerateFiles(Path.GetDirectoryName(target)!, Path.GetFileName(target) + ".*.part"))
                if (DateTime.UtcNow - File.GetLastWriteTimeUtc(part) > AbandonedPartAge) TryDelete(part);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    static string OneLine(string text) => string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>What is missing and why (one sentence), then where a copy can go (the URL's file, or for a dead URL the same file from elsewhere).</summary>
    GraftException Missing(Asset asset, string problem, bool upstreamGone = false) =>
        new(problem.TrimEnd().EndsWith('.') ? problem.TrimEnd() : problem.TrimEnd() + ".", HowToGet(asset, upstreamGone));

    /// <summary>
    /// Where a copy of a missing asset can go, one short sentence each: the URL's file (for a dead URL, the same file
    /// from elsewhere) into Graft's cache, or Keras's cache, or a mirror.
    /// </summary>
    public IReadOnlyList<string> HowToGet(Asset asset, bool upstreamGone = false)
    {
        var hash = asset.Hash is null ? "" : $" ({HashName(asset.Hash)} {asset.Hash})";
        var lines = new List<string>
        {
            upstreamGone ? $"Get {asset.FileName}{hash} from another source and copy it to {CachePath(asset)}."
                : $"Download {asset.Url}{hash} to {CachePath(asset)}.",
        };
        if (asset.KerasCache && KerasCacheFolders.Count > 0) lines.Add($"Or copy it into Keras's cache, {KerasCacheFolders[0]}.");
        lines.Add($"Or set {MirrorVariable} to a folder holding {asset.RelativePath}.");
        return lines;
    }

    static string Md5Of(string path) => HashFile(path, md5: true);

    /// <summary>The file's SHA-256 (remembered per path, size and time: weight files are hashed once per process).</summary>
    public static string Sha256Of(string path) => HashFile(path, md5: false);

    static string HashKey(FileInfo info, bool md5) => $"{(md5 ? "md5" : "sha256")}|{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}";

    static void Remember(string path, bool md5, string hash)
    {
        var key = HashKey(new FileInfo(path), md5);
        lock (VerifiedHashes) VerifiedHashes[key] = hash.ToLowerInvariant();
    }

    static string HashFile(string path, bool md5)
    {
        var key = HashKey(new FileInfo(path), md5);
        lock (VerifiedHashes)
            if (VerifiedHashes.TryGetValue(key, out var known)) return known;
        using var stream = File.OpenRead(path);
        var hash = Convert.ToHexStringLower(md5 ? MD5.HashData(stream) : SHA256.HashData(stream));
        lock (VerifiedHashes) VerifiedHashes[key] = hash;
        return hash;
    }
}
