using System.Diagnostics;
using Graft.Imaging;

namespace Graft.Bench;

/// <summary>
/// Phone-camera photos (the dataset <see cref="BenchOptions.PhoneDataset"/>): 2 x 64 JPEGs of 4032x3024 (<see
/// cref="PhonePhotos"/>) kept in Graft's cache. Decoding at reduced DCT scale against full decoding of the same files,
/// then a cold `graft train` on them (feature extraction images/s, peak memory) in its own process.
/// </summary>
static class PhonePhotoBench
{
    /// <summary>The dataset's folder in Graft's cache, its photos made there once: class "a" (seed 11), then "b" (seed 12).</summary>
    public static (string Root, IReadOnlyList<string> Files) Photos(BenchHost host)
    {
        const string name = BenchOptions.PhoneDataset;
        var root = Path.Combine(host.Assets.CacheRoot, "bench", name);
        host.Log($"{name}: making 128 photos of {PhonePhotos.Width}x{PhonePhotos.Height} in {root} (once)...");
        return (root, new[] { "a", "b" }.SelectMany((c, i) => PhonePhotos.Generate(Path.Combine(root, c), 64, seed: 11 + i, host.Assets)).ToList());
    }

    public static IReadOnlyList<Row> Rows(BenchRun run)
    {
        const string name = BenchOptions.PhoneDataset;
        var (root, files) = Photos(run.Host);
        var sample = files.Take(64).ToList();
        double Decode(bool full)
        {
            var clock = Stopwatch.StartNew();
            Parallel.ForEach(sample, f => ImageLoader.LoadRgb(f, 224, ResizeMode.CenterCrop, fullDecode: full));
            return sample.Count / clock.Elapsed.TotalSeconds;
        }
        Decode(false); // warm-up
        double full = Decode(true), scaled = Decode(false);
        using var cache = new TempFolder();
        run.Host.Log($"{name}: graft train, cold cache...");
        var result = ChildRuns.Train(run.Host, root, cache.Path);
        double rate = result.GetProperty("feature_images_per_second").GetDouble();
        return
        [
            new($"{name}: decode + resize 12 MP JPEGs, full decoding (peer)", full, "images/s", "", null),
            new($"{name}: decode + resize 12 MP JPEGs, reduced DCT scale (Graft)", scaled, "images/s", "", null),
            new($"{name}: reduced / full decoding", scaled / full, "x", "", null),
            new($"{name}: feature extraction (graft train, 128 photos)", rate, "images/s", ">= 80", rate >= 80),
            new($"{name}: peak RSS, graft train", result.GetProperty("peak_rss_mb").GetDouble(), "MB", "", null),
        ];
    }
}
