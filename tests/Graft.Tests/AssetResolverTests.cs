using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Graft.Weights;

namespace Graft.Tests;

/// <summary>
/// The weight-file lookup and download path against a real HTTP server on loopback: good files (MD5 and SHA-256)
/// downloaded once and reused, wrong hashes, truncated and stalled responses, 404s, offline errors, Keras's cache.
/// Every resolve is bounded (the resolver's stall timeout, and a wall-clock limit here); the server stops with each test.
/// </summary>
public class AssetResolverTests
{
    static readonly byte[] Good = Bytes(200_000, seed: 1);
    static readonly byte[] Other = Bytes(5_000, seed: 2);
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(4);

    static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    static string Md5(byte[] bytes) => Convert.ToHexStringLower(MD5.HashData(bytes));
    static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The files under a folder (none if it does not exist): what a failed download must not leave behind.</summary>
    static string[] FilesUnder(string folder) =>
        Directory.Exists(folder) ? Directory.GetFiles(folder, "*", SearchOption.AllDirectories) : [];

    static AssetResolver Resolver(TempDir dir, bool allowDownload = true, IProgress<AssetDownloadProgress>? progress = null, double stallSeconds = 2) =>
        new([dir["mirror"]], dir["cache"], allowDownload, [dir["keras"]], progress) { StallTimeout = TimeSpan.FromSeconds(stallSeconds) };

    /// <summary>Resolves with a wall-clock bound, so a hang fails the test instead of the run.</summary>
    static string Resolve(AssetResolver resolver, Asset asset)
    {
        // Resolve blocks its thread on the download: give it its own, so the thread pool stays free for the I/O.
        var task = Task.Factory.StartNew(() => resolver.Resolve(asset), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (Task.WhenAny(task, Task.Delay(Limit)).GetAwaiter().GetResult() != task)
            throw new TimeoutException($"Resolve({asset.Url}) did not finish within {Limit}.");
        return task.GetAwaiter().GetResult();
    }

    static GraftException Fails(AssetResolver resolver, Asset asset) => Assert.Throws<GraftException>(() => Resolve(resolver, asset));

    static LoopbackServer Server() => new(new()
    {
        ["/good.bin"] = (context, _) => LoopbackServer.Send(context, Good),
        ["/other.bin"] = (context, _) => LoopbackServer.Send(context, Other),
        // Announces 100 000 bytes, sends 1 000 and closes the connection.
        ["/truncated.bin"] = async (context, _) =>
        {
            context.Response.ContentLength64 = 100_000;
            await context.Response.OutputStream.WriteAsync(Good.AsMemory(0, 1_000));
            await context.Response.OutputStream.FlushAsync();
            context.Response.Abort();
        },
        // Announces 100 000 bytes, sends 1 000, then nothing until the server stops.
        ["/stall.bin"] = async (context, stop) =>
        {
            context.Response.ContentLength64 = 100_000;
            await context.Response.OutputStream.WriteAsync(Good.AsMemory(0, 1_000));
            await context.Response.OutputStream.FlushAsync();
            try { await Task.Delay(Timeout.Infinite, stop); } catch (OperationCanceledException) { }
            context.Response.Abort();
        },
    });

    [Fact]
    public void A_good_file_with_an_md5_is_downloaded_once_into_the_cache_and_reused()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/keras/good.h5", server.Url + "good.bin", Md5(Good)) { KerasCache = true };

        var path = Resolve(Resolver(dir), asset);

        Assert.Equal(Path.Combine(dir["cache"], "assets", "models", "keras", "good.h5"), path);
        Assert.Equal(Good, File.ReadAllBytes(path));
        Assert.Equal(1, server.Requests("/good.bin"));
        Assert.Equal([path], FilesUnder(dir["cache"]));
        Assert.Empty(FilesUnder(dir["keras"])); // Keras's cache is read, never written

        Assert.Equal(path, Resolve(Resolver(dir), asset)); // a fresh resolver (another run) finds it in the cache
        Assert.Equal(path, Resolve(Resolver(dir, allowDownload: false), asset));
        Assert.Equal(1, server.Requests("/good.bin"));
    }

    [Fact]
    public void A_good_file_with_a_sha256_is_downloaded_once_with_progress()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/coral/good.tflite", server.Url + "good.bin", Sha256(Good));
        var progress = new Recorder();
        var resolver = Resolver(dir, progress: progress);

        var path = Resolve(resolver, asset);
        Assert.Equal(Good, File.ReadAllBytes(path));
        Assert.Equal(path, Resolve(resolver, asset));
        Assert.Equal(1, server.Requests("/good.bin"));

        Assert.NotEmpty(progress.Reports);
        Assert.All(progress.Reports, r => Assert.Same(asset, r.Asset));
        Assert.Equal(progress.Reports.Select(r => r.BytesReceived).Order(), progress.Reports.Select(r => r.BytesReceived));
        Assert.Equal(new AssetDownloadProgress(asset, Good.Length, Good.Length), progress.Reports[^1]);
    }

    [Fact]
    public void Hashes_are_compared_without_regard_to_case()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/good.bin", server.Url + "good.bin", Sha256(Good).ToUpperInvariant());
        Assert.Equal(Good, File.ReadAllBytes(Resolve(Resolver(dir), asset)));
        Assert.Equal(Good, File.ReadAllBytes(Resolve(Resolver(dir), asset)));
        Assert.Equal(1, server.Requests("/good.bin"));
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    public void A_download_with_the_wrong_hash_names_the_url_and_both_hashes_and_leaves_nothing(int hashLength)
    {
        using var dir = new TempDir();
        using var server = Server();
        var expected = hashLength == 32 ? Md5(Good) : Sha256(Good);
        var actual = hashLength == 32 ? Md5(Other) : Sha256(Other);
        var asset = new Asset("models/keras/wrong.h5", server.Url + "other.bin", expected) { KerasCache = true };

        var e = Fails(Resolver(dir), asset);

        Assert.Contains(server.Url + "other.bin", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Contains(actual, e.Message);
        Assert.Contains(hashLength == 32 ? "MD5" : "SHA-256", e.Message);
        Assert.Empty(FilesUnder(dir["cache"]));
        Assert.Equal(1, server.Requests("/other.bin"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_truncated_download_is_an_error_even_without_a_hash_and_leaves_nothing(bool hashKnown)
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/keras/truncated.h5", server.Url + "truncated.bin", hashKnown ? Md5(Good) : null) { KerasCache = true };

        var e = Fails(Resolver(dir), asset);

        Assert.Contains(server.Url + "truncated.bin", e.Message);
        Assert.Matches(@"ended after \d+ of 100000 bytes", e.Message);
        Assert.Contains(Path.Combine(dir["cache"], "assets", "models", "keras", "truncated.h5"), e.Message);
        Assert.Empty(FilesUnder(dir["cache"]));
        Assert.False(File.Exists(Path.Combine(dir["cache"], "assets", "models", "keras", "truncated.h5")));
        Assert.Throws<GraftException>(() => Resolve(Resolver(dir, allowDownload: false), asset)); // nothing usable was kept
    }

    [Fact]
    public void A_stalled_download_is_abandoned_after_the_stall_timeout_and_leaves_nothing()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/stall.bin", server.Url + "stall.bin", null);
        var clock = Stopwatch.StartNew();

        var e = Fails(Resolver(dir, stallSeconds: 0.3), asset);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.Contains("stalled", e.Message);
        Assert.Contains(server.Url + "stall.bin", e.Message);
        Assert.Empty(FilesUnder(dir["cache"]));
    }

    [Fact]
    public void A_404_is_one_line_naming_the_url_and_where_to_put_the_file()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/keras/gone.h5", server.Url + "gone.h5", Md5(Good)) { KerasCache = true };

        var e = Fails(Resolver(dir), asset);

        Assert.Contains(server.Url + "gone.h5", e.Message);
        Assert.Contains("HTTP 404", e.Message);
        Assert.Contains("from another source", e.Message); // the URL is dead: fetching it again is not the fix
        Assert.Contains(Path.Combine(dir["cache"], "assets", "models", "keras", "gone.h5"), e.Message);
        Assert.Contains(dir["keras"], e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(FilesUnder(dir["cache"]));
        Assert.Equal(1, server.Requests("/gone.h5"));
    }

    [Fact]
    public void A_refused_connection_is_a_graft_error_naming_the_url()
    {
        using var dir = new TempDir();
        var url = $"http://127.0.0.1:{LoopbackServer.FreePort()}/nothing-listens.bin";
        var e = Fails(Resolver(dir), new Asset("models/x.bin", url, null));
        Assert.Contains(url, e.Message);
        Assert.Empty(FilesUnder(dir["cache"]));
    }

    [Fact]
    public void Offline_a_missing_file_names_the_file_the_url_the_cache_and_kerass_cache()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/keras/offline.h5", server.Url + "good.bin", Md5(Good)) { KerasCache = true };

        var e = Fails(Resolver(dir, allowDownload: false), asset);

        Assert.Contains("offline.h5", e.Message);
        Assert.Contains(server.Url + "good.bin", e.Message);
        Assert.Contains($"MD5 {Md5(Good)}", e.Message);
        Assert.Contains(Path.Combine(dir["cache"], "assets", "models", "keras", "offline.h5"), e.Message);
        Assert.Contains(dir["keras"], e.Message);
        Assert.Contains(AssetResolver.MirrorVariable, e.Message);
        Assert.Equal(0, server.TotalRequests);

        var notKeras = Fails(Resolver(dir, allowDownload: false), asset with { KerasCache = false });
        Assert.DoesNotContain(dir["keras"], notKeras.Message);
        Assert.Contains(dir["cache"], notKeras.Message);
    }

    [Fact]
    public void A_kerass_cache_copy_with_the_right_md5_is_used_in_place()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/keras/in_keras.h5", server.Url + "good.bin", Md5(Good)) { KerasCache = true };
        Directory.CreateDirectory(dir["keras"]);
        File.WriteAllBytes(Path.Combine(dir["keras"], "in_keras.h5"), Good);

        Assert.Equal(Path.Combine(dir["keras"], "in_keras.h5"), Resolve(Resolver(dir), asset));
        Assert.Equal(0, server.TotalRequests);
        Assert.Empty(FilesUnder(dir["cache"]));
        // Only files Keras itself downloads are looked for there.
        Assert.Throws<GraftException>(() => Resolve(Resolver(dir, allowDownload: false), asset with { KerasCache = false }));
    }

    [Fact]
    public void A_kerass_cache_copy_with_the_wrong_md5_is_a_miss_as_in_keras_and_is_left_alone()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/keras/stale.h5", server.Url + "good.bin", Md5(Good)) { KerasCache = true };
        var kerasCopy = Path.Combine(dir["keras"], "stale.h5");
        Directory.CreateDirectory(dir["keras"]);
        File.WriteAllBytes(kerasCopy, Other);

        // Offline: the error names Keras's file and both hashes, and still says where to put a good copy.
        var e = Fails(Resolver(dir, allowDownload: false), asset);
        Assert.Contains(kerasCopy, e.Message);
        Assert.Contains(Md5(Other), e.Message);
        Assert.Contains(Md5(Good), e.Message);
        Assert.Contains(Path.Combine(dir["cache"], "assets", "models", "keras", "stale.h5"), e.Message);

        // Online: Graft fetches its own copy into its cache; Keras's file is neither used nor touched.
        var path = Resolve(Resolver(dir), asset);
        Assert.Equal(Path.Combine(dir["cache"], "assets", "models", "keras", "stale.h5"), path);
        Assert.Equal(Good, File.ReadAllBytes(path));
        Assert.Equal(Other, File.ReadAllBytes(kerasCopy));
        Assert.Equal(1, server.Requests("/good.bin"));
        Assert.Equal(path, Resolve(Resolver(dir), asset));
        Assert.Equal(1, server.Requests("/good.bin"));
    }

    [Theory]
    [InlineData("mirror")]
    [InlineData("keras")]
    [InlineData("cache")]
    public void With_no_hash_known_any_local_copy_is_used(string where)
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/keras/nohash.h5", server.Url + "good.bin", null) { KerasCache = true };
        var local = where switch
        {
            "mirror" => Path.Combine(dir["mirror"], "models", "keras", "nohash.h5"),
            "keras" => Path.Combine(dir["keras"], "nohash.h5"),
            _ => Path.Combine(dir["cache"], "assets", "models", "keras", "nohash.h5"),
        };
        Directory.CreateDirectory(Path.GetDirectoryName(local)!);
        File.WriteAllText(local, "whatever is here");

        Assert.Equal(local, Resolve(Resolver(dir), asset));
        Assert.Equal(0, server.TotalRequests);
    }

    [Fact]
    public void The_mirror_comes_first_and_a_wrong_hash_there_is_refused_even_online()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/keras/mirrored.h5", server.Url + "good.bin", Md5(Good)) { KerasCache = true };
        var mirrored = Path.Combine(dir["mirror"], "models", "keras", "mirrored.h5");
        Directory.CreateDirectory(Path.GetDirectoryName(mirrored)!);
        Directory.CreateDirectory(dir["keras"]);
        File.WriteAllBytes(Path.Combine(dir["keras"], "mirrored.h5"), Good);

        File.WriteAllBytes(mirrored, Good);
        Assert.Equal(mirrored, Resolve(Resolver(dir), asset));

        File.WriteAllBytes(mirrored, Other);
        var e = Fails(Resolver(dir), asset);
        Assert.Contains(mirrored, e.Message);
        Assert.Contains(Md5(Other), e.Message);
        Assert.Contains(Md5(Good), e.Message);
        Assert.Contains(server.Url + "good.bin", e.Message);
        Assert.Equal(0, server.TotalRequests);
    }

    [Fact]
    public void A_wrong_file_in_graft_s_cache_is_refused_with_the_fix()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/placed.bin", server.Url + "good.bin", Sha256(Good));
        var cached = Path.Combine(dir["cache"], "assets", "models", "placed.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(cached)!);
        File.WriteAllBytes(cached, Other);

        var e = Fails(Resolver(dir), asset);
        Assert.Contains(cached, e.Message);
        Assert.Contains(Sha256(Other), e.Message);
        Assert.Contains("Delete it", e.Message);
        Assert.Equal(0, server.TotalRequests);
    }

    [Fact]
    public async Task Concurrent_downloads_of_the_same_file_leave_one_good_copy_and_no_part_files()
    {
        using var dir = new TempDir();
        var arrived = 0;
        var both = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var server = new LoopbackServer(new()
        {
            // Answers only once both requests are in, so the two downloads overlap.
            ["/together.bin"] = async (context, stop) =>
            {
                if (Interlocked.Increment(ref arrived) == 2) both.TrySetResult();
                await both.Task.WaitAsync(TimeSpan.FromSeconds(2), stop);
                await LoopbackServer.Send(context, Good);
            },
        });
        var asset = new Asset("models/together.bin", server.Url + "together.bin", Sha256(Good));

        Task<string> Download() => Task.Factory.StartNew(() => Resolve(Resolver(dir), asset), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var paths = await Task.WhenAll(Download(), Download()).WaitAsync(Limit + Limit);

        Assert.Equal(2, server.Requests("/together.bin"));
        Assert.Equal(paths[0], paths[1]);
        Assert.Equal(Good, File.ReadAllBytes(paths[0]));
        Assert.Equal([paths[0]], FilesUnder(dir["cache"]));
    }

    [Fact]
    public void Part_files_abandoned_by_killed_downloads_are_cleared_by_the_next_download()
    {
        using var dir = new TempDir();
        using var server = Server();
        var asset = new Asset("models/resumed.bin", server.Url + "good.bin", Md5(Good));
        var folder = Path.Combine(dir["cache"], "assets", "models");
        Directory.CreateDirectory(folder);
        var abandoned = Path.Combine(folder, "resumed.bin.12345-dead.part");
        var live = Path.Combine(folder, "resumed.bin.23456-live.part"); // another process's download in progress
        File.WriteAllBytes(abandoned, Other);
        File.WriteAllBytes(live, Other);
        File.SetLastWriteTimeUtc(abandoned, DateTime.UtcNow.AddHours(-3));

        var path = Resolve(Resolver(dir), asset);

        Assert.Equal(Good, File.ReadAllBytes(path));
        Assert.False(File.Exists(abandoned));
        Assert.True(File.Exists(live));
    }

    [Fact]
    public void A_malformed_hash_is_a_programming_error()
    {
        using var dir = new TempDir();
        Assert.Throws<ArgumentException>(() => Resolver(dir, allowDownload: false).Resolve(new Asset("a.bin", "http://127.0.0.1:9/a.bin", "abc")));
        Assert.Throws<ArgumentException>(() => Resolver(dir, allowDownload: false).Resolve(new Asset("a.bin", "http://127.0.0.1:9/a.bin", new string('g', 32))));
    }

    sealed class Recorder : IProgress<AssetDownloadProgress>
    {
        public List<AssetDownloadProgress> Reports { get; } = [];
        public void Report(AssetDownloadProgress value) { lock (Reports) Reports.Add(value); }
    }

    /// <summary>An HTTP server on 127.0.0.1 and a free port; unknown paths answer 404; stops (and ends its handlers) on Dispose.</summary>
    sealed class LoopbackServer : IDisposable
    {
        readonly HttpListener listener;
        readonly CancellationTokenSource stop = new();
        readonly Dictionary<string, Func<HttpListenerContext, CancellationToken, Task>> routes;
        readonly ConcurrentDictionary<string, int> requests = new();
        readonly ConcurrentBag<Task> handlers = [];
        readonly Task loop;

        public string Url { get; }
        public int Requests(string path) => requests.GetValueOrDefault(path);
        public int TotalRequests => requests.Values.Sum();

        public LoopbackServer(Dictionary<string, Func<HttpListenerContext, CancellationToken, Task>> routes)
        {
            this.routes = routes;
            for (var attempt = 0; ; attempt++)
            {
                var url = $"http://127.0.0.1:{FreePort()}/";
                var candidate = new HttpListener();
                candidate.Prefixes.Add(url);
                try { candidate.Start(); }
                catch (HttpListenerException) when (attempt < 5) { candidate.Close(); continue; }
                (listener, Url) = (candidate, url);
                break;
            }
            loop = Task.Run(ServeAsync);
        }

        public static int FreePort()
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            return ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        public static async Task Send(HttpListenerContext context, byte[] body)
        {
            context.Response.ContentLength64 = body.Length;
            await context.Response.OutputStream.WriteAsync(body);
            context.Response.Close();
        }

        async Task ServeAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                HttpListenerContext context;
                try { context = await listener.GetContextAsync(); }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
                handlers.Add(Task.Run(() => HandleAsync(context)));
            }
        }

        async Task HandleAsync(HttpListenerContext context)
        {
            var path = context.Request.Url!.AbsolutePath;
            requests.AddOrUpdate(path, 1, (_, n) => n + 1);
            try
            {
                if (routes.TryGetValue(path, out var route)) await route(context, stop.Token);
                else
                {
                    context.Response.StatusCode = 404;
                    context.Response.Close();
                }
            }
            catch (Exception) { context.Response.Abort(); } // the client went away, or the server is stopping
        }

        public void Dispose()
        {
            stop.Cancel();
            listener.Stop();
            listener.Close();
            loop.Wait(TimeSpan.FromSeconds(2));
            Task.WaitAll([.. handlers], TimeSpan.FromSeconds(2));
            stop.Dispose();
        }
    }

    /// <summary>
    /// A shared/ folder above the working or install folder is not a mirror: only GRAFT_ASSETS and the shared/ folder
    /// beside the checkout Graft was built in (where these tests find theirs) are.
    /// </summary>
    [Fact]
    public void Only_the_checkouts_own_shared_folder_is_a_mirror_besides_GRAFT_ASSETS()
    {
        using var dir = new TempDir();
        foreach (var folder in new[] { "shared", "work/shared", "work/graft/src/bin", "work/tools/graft/bin", "bare/graft/bin" })
            Directory.CreateDirectory(dir[folder]);
        File.WriteAllText(dir["work/graft/Graft.slnx"], "");
        File.WriteAllText(dir["bare/graft/Graft.slnx"], "");

        Assert.Equal(dir["work/shared"], AssetResolver.CheckoutMirror(dir["work/graft/src/bin"]));
        Assert.Null(AssetResolver.CheckoutMirror(dir["work/tools/graft/bin"])); // an installed tool: work/shared and shared are not its
        Assert.Null(AssetResolver.CheckoutMirror(dir["bare/graft/bin"]));       // a checkout without shared/ beside it

        var checkout = AssetResolver.CheckoutMirror(AppContext.BaseDirectory);
        Assert.NotNull(checkout);
        Assert.Contains(checkout, AssetResolver.DefaultSearchRoots());
    }
}
