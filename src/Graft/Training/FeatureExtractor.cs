using System.Diagnostics;
using Graft.Data;
using Graft.Engine;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>Progress of a pass over images: done of total, with throughput for the progress line.</summary>
public sealed record ImageProgress(string Phase, int Done, int Total, double ImagesPerSecond);

/// <summary>Features per input image (null where the image was skipped), with what the cache saved.</summary>
internal sealed record ExtractedFeatures(float[]?[] Features, IReadOnlyList<SkippedImage> Skipped, int CacheHits, int Computed,
    double Seconds)
{
    /// <summary>Each image file's content key (SHA-256; null where unreadable): equal keys are byte-identical copies.</summary>
    public IReadOnlyList<string?> ContentKeys { get; init; } = [];

    public double ImagesPerSecond => Computed / Math.Max(Seconds, 1e-9);
}

/// <summary>
/// Runs the frozen trunk once per image and keeps the pooled features in the bottleneck cache.
/// Images already in the cache skip decoding and the trunk entirely.
/// </summary>
internal static class FeatureExtractor
{
    public static async Task<ExtractedFeatures> ExtractAsync(IReadOnlyList<string> paths, ITrunkRunner trunk, ImageSpec spec,
        int channels, FeatureCache? cache, int batchSize = 32, IProgress<ImageProgress>? progress = null, CancellationToken cancel = default,
        bool mirror = false)
    {
        var features = new float[]?[paths.Count];
        var keys = new string[paths.Count];
        var skipped = new List<SkippedImage>();
        Parallel.For(0, paths.Count, i =>
        {
            try { keys[i] = FeatureCache.ContentKey(paths[i]); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) // unreadable (permissions): skipped like an undecodable image
            {
                lock (skipped) skipped.Add(new SkippedImage(paths[i], e.Message));
            }
        });
        if (cache is not null)
            Parallel.For(0, paths.Count, i => { if (keys[i] is not null) features[i] = cache.TryGet(keys[i]); });

        var todo = Enumerable.Range(0, paths.Count).Where(i => features[i] is null && keys[i] is not null).ToArray();
        int hits = paths.Count - todo.Length - skipped.Count;
        var clock = Stopwatch.StartNew();
        int done = 0, computed = 0;
        progress?.Report(new ImageProgress("features", 0, todo.Length, 0));
        await foreach (var batch in BatchPipeline.Batches(todo.Select(i => paths[i]).ToList(), spec, batchSize, cancel: cancel))
        {
            skipped.AddRange(batch.Failures.Select(f => new SkippedImage(f.Path, f.Reason)));
            if (batch.Count > 0)
            {
                using var scope = NewDisposeScope();
                var images = tensor(batch.Pixels, [batch.Count, 3, spec.Size, spec.Size]);
                if (mirror) images = images.flip(3).contiguous(); // test-time augmentation: the left-right mirror image
                var pooled = trunk.Features(images).contiguous().data<float>().ToArray();
                for (int k = 0; k < batch.Count; k++)
                {
                    int i = todo[batch.Indices[k]];
                    features[i] = pooled.AsSpan(k * channels, channels).ToArray();
                    cache?.Put(keys[i], features[i]);
                }
            }
            computed += batch.Count;
            done += batch.Count + batch.Failures.Count;
            progress?.Report(new ImageProgress("features", done, todo.Length, done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)));
        }
        return new ExtractedFeatures(features, skipped.OrderBy(s => s.Path, StringComparer.Ordinal).ToList(), hits, computed,
            clock.Elapsed.TotalSeconds) { ContentKeys = keys };
    }
}
