using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using Graft.Data;
using Graft.Weights;
using Graft.Imaging;

namespace Graft.Tests;

/// <summary>
/// `graft datasets get`: a zip downloaded from a loopback server or given by the user, extracted safely, checked by
/// content hash and moved into Graft's cache atomically; and the hard-coded hashes against the offline mirror.
/// </summary>
public class DatasetsTests
{
    const string Top = "tiny_data";

    static AssetResolver Resolver(TempDir dir, bool allowDownload = true) =>
        new([dir["mirror"]], dir["cache"], allowDownload, kerasCacheFolders: []) { StallTimeout = TimeSpan.FromSeconds(2) };

    /// <summary>A generated dataset under TOP/ zipped as upstream zips hymenoptera, and the row describing it.</summary>
    static (string Zip, SampleDataset Row) TinyZip(TempDir dir, string? url = null, string? hash = null)
    {
        TinyImages.WriteClassFolders(dir[$"made/{Top}/train"], perClass: 2);
        TinyImages.WriteClassFolders(dir[$"made/{Top}/val"], perClass: 1, seed: 2);
        var zip = dir["tiny.zip"];
        ZipFile.CreateFromDirectory(dir["made"], zip);
        var content = DatasetArchive.Content(dir[$"made/{Top}"]);
        return (zip, new SampleDataset("tiny", "https://example.org/tiny", url, "tiny.zip", SampleDatasets.UnderFolder(Top),
            hash ?? content.Hash, content.Files, content.Bytes));
    }

    static string[] RelativeFiles(string folder) =>
        Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(folder, f)).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void DownloadedZipIsVerifiedExtractedAndFound()
    {
        using var dir = new TempDir();
        using var server = new ZipServer();
        var (zip, row) = TinyZip(dir, server.Url);
        server.Body = File.ReadAllBytes(zip);
        var resolver = Resolver(dir);

        var path = SampleDatasets.Get(row, resolver);

        Assert.Equal(SampleDatasets.CacheFolder(row, resolver), path);
        Assert.Equal(RelativeFiles(dir[$"made/{Top}"]), RelativeFiles(path));
        Assert.Equal(row.ContentHash, DatasetArchive.Content(path).Hash);
        Assert.Equal(path, SampleDatasets.Find(row, resolver));
        // Only the dataset stays: no downloaded zip, no temporary folder.
        Assert.Equal(path, Assert.Single(Directory.GetFileSystemEntries(dir["cache/datasets"])));
        Assert.Empty(Directory.GetFiles(dir["cache"], "*.zip", SearchOption.AllDirectories));
        // A second get finds it and does not download again.
        Assert.Equal(path, SampleDatasets.Get(row, resolver));
        Assert.Equal(1, server.Requests);
    }

    [Fact]
    public void WrongContentHashLeavesNothingBehind()
    {
        using var dir = new TempDir();
        using var server = new ZipServer();
        var (zip, row) = TinyZip(dir, server.Url, hash: new string('0', 64));
        server.Body = File.ReadAllBytes(zip);
        var resolver = Resolver(dir);

        var e = Assert.Throws<GraftException>(() => SampleDatasets.Get(row, resolver));

        Assert.Contains(server.Url, e.Problem);
        Assert.Contains(new string('0', 64), e.Problem);
        Assert.Contains(DatasetArchive.Content(dir[$"made/{Top}"]).Hash, e.Problem);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(Directory.GetFiles(dir["cache"], "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetDirectories(dir["cache/datasets"]));
        Assert.Null(SampleDatasets.Find(row, resolver));
    }

    [Theory]
    [InlineData($"{Top}/../../evil.txt", "'..'")]
    [InlineData("/tmp/evil.txt", "absolute")]
    [InlineData($"{Top}/link", "symbolic link")]
    public void UnsafeEntriesAreRefused(string entryName, string why)
    {
        using var dir = new TempDir();
        var (_, row) = TinyZip(dir);
        var zip = dir["hostile.zip"];
        using (var archive = ZipFile.Open(zip, ZipArchiveMode.Create))
        {
            Write(archive, $"{Top}/train/a.png", [1, 2, 3]);
            var entry = archive.CreateEntry(entryName);
            if (why == "symbolic link") entry.ExternalAttributes = unchecked((int)0xA1FF_0000); // S_IFLNK | 0777
            using var stream = entry.Open();
            stream.Write("/etc/passwd"u8);
        }

        var e = Assert.Throws<GraftException>(() => SampleDatasets.Get(row, Resolver(dir), zip));

        Assert.Contains(zip, e.Problem);
        Assert.Contains(why, e.Problem);
        Assert.False(File.Exists(dir["evil.txt"]));
        Assert.Empty(Directory.GetFileSystemEntries(dir["cache/datasets"]));
    }

    [Fact]
    public void ExtractionIsCappedInBytesAndEntries()
    {
        using var dir = new TempDir();
        var (zip, row) = TinyZip(dir);
        var bytes = Assert.Throws<GraftException>(() => DatasetArchive.Extract(zip, dir["out1"], row.Layout, maxBytes: 1_000));
        Assert.Contains("more than 1,000 bytes", bytes.Problem);
        var entries = Assert.Throws<GraftException>(() => DatasetArchive.Extract(zip, dir["out2"], row.Layout, maxEntries: 3));
        Assert.Contains("more than the 3 a dataset may have", entries.Problem);
    }

    [Fact]
    public void KaggleZipBecomesTheKerasBlogLayout()
    {
        using var dir = new TempDir();
        var zip = dir["train.zip"];
        var numbers = new[] { 0, 1, 2, 3, 5, 6, 7, 12 };
        using (var archive = ZipFile.Open(zip, ZipArchiveMode.Create))
        {
            archive.CreateEntry("train/");
            foreach (var animal in new[] { "cat", "dog" })
                foreach (var n in numbers) Write(archive, $"train/{animal}.{n}.jpg", [(byte)n, (byte)animal[0]]);
            Write(archive, "test1/1.jpg", [9]);
        }
        // What the blog layout must hold, built by hand: train 1-3, validation 5-6 (the others left out).
        foreach (var animal in new[] { "cat", "dog" })
            foreach (var (split, n) in new[] { ("train", 1), ("train", 2), ("train", 3), ("validation", 5), ("validation", 6) })
            {
                Directory.CreateDirectory(dir[$"expected/{split}/{animal}s"]);
                File.WriteAllBytes(dir[$"expected/{split}/{animal}s/{animal}.{n}.jpg"], [(byte)n, (byte)animal[0]]);
            }
        var expected = DatasetArchive.Content(dir["expected"]);
        var row = new SampleDataset("kaggle", "https://example.org/kaggle", null, "train.zip", SampleDatasets.KaggleSubset((1, 3), (5, 6)),
            expected.Hash, expected.Files, expected.Bytes);

        var path = SampleDatasets.Get(row, Resolver(dir), zip);

        Assert.Equal(RelativeFiles(dir["expected"]), RelativeFiles(path));
        Assert.True(File.Exists(zip)); // the user's file is theirs
    }

    [Fact]
    public void CatsVsDogsRowMapsKaggleNamesAsTheMirrorHasThem()
    {
        var layout = SampleDatasets.Named("cats_vs_dogs")!.Layout;
        Assert.Equal("train/cats/cat.1.jpg", layout("train/cat.1.jpg"));
        Assert.Equal("train/dogs/dog.1000.jpg", layout("train/dog.1000.jpg"));
        Assert.Equal("validation/cats/cat.4001.jpg", layout("train/cat.4001.jpg"));
        Assert.Equal("validation/dogs/dog.4400.jpg", layout("train/dog.4400.jpg"));
        foreach (var outside in new[] { "train/cat.0.jpg", "train/cat.1001.jpg", "train/dog.4000.jpg", "train/dog.4401.jpg", "test1/1.jpg", "train/" })
            Assert.Null(layout(outside));
    }

    [Fact]
    public void OfflineOrLoginOnlyDatasetsSayHowToGetThemAndTheCliOffersFrom()
    {
        using var dir = new TempDir();
        var offline = Assert.Throws<GraftException>(() => SampleDatasets.Get(SampleDatasets.Named("hymenoptera")!, Resolver(dir, allowDownload: false)));
        Assert.Contains("GRAFT_OFFLINE", offline.Problem);
        Assert.Equal((CallerFix.DatasetZip, "hymenoptera"), (offline.CallerFix, offline.Subject));
        var lines = Cli.Cli.ErrorOf(offline).Message.Split('\n');
        Assert.Equal("  Or unpack the zip you downloaded: graft datasets get hymenoptera --from hymenoptera_data.zip", lines[^1]);
        Assert.Equal(4, lines.Length);

        var kaggle = Assert.Throws<GraftException>(() => SampleDatasets.Get(SampleDatasets.Named("cats_vs_dogs")!, Resolver(dir)));
        Assert.Contains("https://www.kaggle.com/c/dogs-vs-cats/data", kaggle.Fix);
        Assert.Contains("graft datasets get cats_vs_dogs --from train.zip", Cli.Cli.ErrorOf(kaggle).Message);
        Assert.False(Directory.Exists(dir["cache"]));
    }

    [Fact]
    public void ResolveLooksInTheMirrorThenTheCache()
    {
        using var dir = new TempDir();
        var resolver = Resolver(dir, allowDownload: false);
        var missing = Assert.Throws<GraftException>(() => SampleDatasets.Resolve("hymenoptera", resolver));
        Assert.Contains("Put it into Graft's cache: graft datasets get hymenoptera", Cli.Cli.ErrorOf(missing).Message);

        Directory.CreateDirectory(dir["cache/datasets/hymenoptera"]);
        Assert.Equal(dir["cache/datasets/hymenoptera"], SampleDatasets.Resolve("hymenoptera", resolver));
        Directory.CreateDirectory(dir["mirror/data/hymenoptera"]); // a mirror's copy comes first, and must be the dataset
        Assert.Contains("content hash", Assert.Throws<GraftException>(() => SampleDatasets.Resolve("hymenoptera", resolver)).Message);
        Assert.Equal("some/folder", SampleDatasets.Resolve("some/folder", resolver)); // not a sample's name: passed on as given
    }

    /// <summary>A mirror's dataset is checked by its content hash, as a download is; the check is remembered until a file changes.</summary>
    [Fact]
    public void A_mirrors_dataset_is_checked_by_content_and_a_changed_one_refused()
    {
        using var dir = new TempDir();
        var (_, row) = TinyZip(dir);
        var copy = dir["mirror/data/tiny"];
        Directory.CreateDirectory(dir["mirror/data"]);
        Directory.Move(dir[$"made/{Top}"], copy);
        var resolver = Resolver(dir, allowDownload: false);

        Assert.Equal(copy, SampleDatasets.Find(row, resolver));
        Assert.True(File.Exists(dir["cache/datasets/tiny.mirror-checked"])); // the next run only lists the folder
        Assert.Equal(copy, SampleDatasets.Find(row, resolver));

        var image = Directory.GetFiles(copy, "*.png", SearchOption.AllDirectories)[0];
        File.AppendAllText(image, "x");
        var e = Assert.Throws<GraftException>(() => SampleDatasets.Find(row, resolver));
        Assert.Contains($"{copy}: the mirror's tiny has content hash", e.Problem);
        Assert.Contains("delete it from the mirror", e.Fix);
    }

    [MirrorFact]
    public void HardCodedContentHashesMatchTheMirror()
    {
        foreach (var dataset in SampleDatasets.All)
        {
            var content = DatasetArchive.Content(MirrorFolder(dataset)!);
            Assert.Equal((dataset.Name, dataset.ContentHash, dataset.Files, dataset.Bytes), (dataset.Name, content.Hash, content.Files, content.Bytes));
        }
    }

    [MirrorFact]
    public void RealRowsRebuildTheMirrorFromUpstreamShapedZips()
    {
        using var dir = new TempDir();
        var resolver = Resolver(dir, allowDownload: false);
        var hymenoptera = SampleDatasets.Named("hymenoptera")!;
        var cats = SampleDatasets.Named("cats_vs_dogs")!;
        // As upstream: hymenoptera_data/{train,val}/..., and Kaggle's flat train/cat.N.jpg with images outside the subset.
        using (var zip = ZipFile.Open(dir["hymenoptera_data.zip"], ZipArchiveMode.Create))
            foreach (var file in RelativeFiles(MirrorFolder(hymenoptera)!))
                zip.CreateEntryFromFile(Path.Combine(MirrorFolder(hymenoptera)!, file), $"hymenoptera_data/{file}", CompressionLevel.NoCompression);
        using (var zip = ZipFile.Open(dir["train.zip"], ZipArchiveMode.Create))
        {
            foreach (var file in RelativeFiles(MirrorFolder(cats)!))
                zip.CreateEntryFromFile(Path.Combine(MirrorFolder(cats)!, file), $"train/{Path.GetFileName(file)}", CompressionLevel.NoCompression);
            Write(zip, "train/cat.0.jpg", [1]);
            Write(zip, "train/dog.12499.jpg", [2]);
        }

        Assert.Equal(hymenoptera.ContentHash, DatasetArchive.Content(SampleDatasets.Get(hymenoptera, resolver, dir["hymenoptera_data.zip"])).Hash);
        Assert.Equal(cats.ContentHash, DatasetArchive.Content(SampleDatasets.Get(cats, resolver, dir["train.zip"])).Hash);
    }

    [Fact]
    public void CliListsAndRefusesUnknownNames()
    {
        var list = GraftCli.Run(null, "datasets", "list", "--json");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("\"name\":\"hymenoptera\"", list.LastLine);
        Assert.Contains("\"name\":\"cats_vs_dogs\"", list.LastLine);
        var unknown = GraftCli.Run(null, "datasets", "get", "mnist");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("There is no sample dataset 'mnist'", unknown.Stderr);
    }

    static string? MirrorFolder(SampleDataset dataset) =>
        Assets.Resolver.SearchRoots.Select(r => Path.Combine(r, "data", dataset.Name)).FirstOrDefault(Directory.Exists);

    /// <summary>A test that needs the sample datasets in ../shared; skipped, saying so, where that mirror is absent.</summary>
    sealed class MirrorFactAttribute : FactAttribute
    {
        public MirrorFactAttribute()
        {
            if (SampleDatasets.All.Any(d => MirrorFolder(d) is null))
                Skip = "The sample datasets are not in any shared/ mirror (../shared beside the checkout, or GRAFT_ASSETS).";
        }
    }

    static void Write(ZipArchive archive, string name, byte[] data)
    {
        using var stream = archive.CreateEntry(name).Open();
        stream.Write(data);
    }

    /// <summary>An HTTP server on 127.0.0.1 answering every request with <see cref="Body"/>.</summary>
    sealed class ZipServer : IDisposable
    {
        readonly HttpListener listener = new();
        readonly Task loop;
        int requests;
        public string Url { get; }
        public byte[] Body { get; set; } = [];
        public int Requests => Volatile.Read(ref requests);

        public ZipServer()
        {
            using (var probe = new TcpListener(IPAddress.Loopback, 0))
            {
                probe.Start();
                Url = $"http://127.0.0.1:{((IPEndPoint)probe.LocalEndpoint).Port}/";
            }
            listener.Prefixes.Add(Url);
            listener.Start();
            Url += "data.zip";
            loop = Task.Run(async () =>
            {
                while (true)
                {
                    HttpListenerContext context;
                    try { context = await listener.GetContextAsync(); }
                    catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
                    Interlocked.Increment(ref requests);
                    context.Response.ContentLength64 = Body.Length;
                    await context.Response.OutputStream.WriteAsync(Body);
                    context.Response.Close();
                }
            });
        }

        public void Dispose()
        {
            listener.Stop();
            listener.Close();
            loop.Wait(TimeSpan.FromSeconds(2));
        }
    }
}
