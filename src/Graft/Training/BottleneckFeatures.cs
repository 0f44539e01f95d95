using System.Diagnostics;
using Graft.Backbones;
using Graft.Data;
using Graft.Engine;
using Graft.Weights;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>Progress of a pass over images: done of total, with throughput for the progress line.</summary>
public sealed record ImageProgress(string Phase, int Done, int Total, double ImagesPerSecond);

/// <summary>What computing the bottleneck features cost: images in all, found in the cache, computed, and the seconds.</summary>
public sealed record FeatureStats(int Images, int CacheHits, int Computed, double Seconds)
{
    /// <summary>Computed images per second.</summary>
    public double ImagesPerSecond => Computed / Math.Max(Seconds, 1e-9);
}

/// <summary>
/// The features of a list of images, in its order: a row per image (null where it was skipped, with the reason in
/// <see cref="Skipped"/>), each file's content key (SHA-256, null where unreadable: equal keys are byte-identical
/// copies), what the cache saved, and why the cache could not be written (null when it could, or was not used).
/// </summary>
internal sealed record ImageFeatures(IReadOnlyList<string> Paths, float[]?[] Rows, int Channels, IReadOnlyList<SkippedImage> Skipped,
    IReadOnlyList<string?> ContentKeys, FeatureStats Stats, string? CacheWarning)
{
    /// <summary>The numbers of the rows from <paramref name="start"/> on (<paramref name="count"/> of them) whose image was read.</summary>
    public int[] ReadRows(int start, int count) => Enumerable.Range(start, count).Where(i => Rows[i] is not null).ToArray();

    /// <summary>The rows <paramref name="index"/> names (all read), as one [n, channels] tensor on <paramref name="device"/>.</summary>
    public Tensor Stack(IReadOnlyList<int> index, Device device) => Stack(Rows, index, Channels, device);

    /// <summary>Rows of features (those named all present) as one [n, channels] tensor on <paramref name="device"/>, in the order <paramref name="index"/> names them.</summary>
    public static Tensor Stack(IReadOnlyList<float[]?> rows, IReadOnlyList<int> index, int channels, Device device)
    {
        var flat = new float[index.Count * channels];
        for (int k = 0; k < index.Count; k++) rows[index[k]]!.CopyTo(flat, k * channels);
        return tensor(flat, [index.Count, channels], device: device);
    }
}

/// <summary>
/// Which features to take of a pretrained backbone: the choices feature-extraction training makes, so that the advisor,
/// the audit and embed read the bottleneck cache entries a training run wrote (and seconds after a first run).
/// </summary>
internal sealed record FeatureSource(string Backbone)
{
    /// <summary>The user's own weight file; null: the registry's sources.</summary>
    public string? WeightsFile { get; init; }
    /// <summary>The network's input size; null: the backbone's default.</summary>
    public int? InputSize { get; init; }
    /// <summary>What an ONNX backbone (<see cref="Backbone"/> an .onnx file) does not say about itself.</summary>
    public OnnxBackboneOptions Onnx { get; init; } = new();
    /// <summary>Take features from this block; null: the trunk's last.</summary>
    public string? FeatureBlock { get; init; }
    public Pooling Pooling { get; init; } = Pooling.Gap;
    public ResizeMode Resize { get; init; } = ResizeMode.CenterCrop;
    /// <summary>Where the trunk runs (the backbone moves there).</summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;
    /// <summary>Where the bottleneck cache lives; null for the user cache.</summary>
    public string? CacheRoot { get; init; }
    public bool UseCache { get; init; } = true;
    public int BatchSize { get; init; } = 32;
}

/// <summary>
/// The feature service: runs a frozen trunk once per image and keeps the pooled features in the bottleneck cache
/// (<see cref="FeatureCache"/>); images already in the cache skip decoding and the trunk entirely. Training, evaluation,
/// the advisor, the audit and embed all take their features here.
/// </summary>
internal static class BottleneckFeatures
{
    /// <summary>A pretrained backbone's features, as <paramref name="source"/> describes them (its cache entries are training's).</summary>
    public static async Task<ImageFeatures> ExtractAsync(IReadOnlyList<string> paths, FeatureSource source, AssetResolver? resolver = null,
        IProgress<ImageProgress>? progress = null, CancellationToken cancel = default)
    {
        using var backbone = LoadBackbone(source, resolver);
        return await ExtractAsync(paths, backbone, source, progress, cancel);
    }

    /// <summary>The pretrained backbone <paramref name="source"/> names (weights, input size), truncated after its feature block; or its ONNX file.</summary>
    public static Backbone LoadBackbone(FeatureSource source, AssetResolver? resolver = null)
    {
        TorchDevices.Resolve(source.Device);
        if (OnnxBackboneOptions.IsOnnxFile(source.Backbone))
        {
            if (source.WeightsFile is not null || source.FeatureBlock is not null)
                throw new GraftException($"{source.Backbone} is an ONNX model: it holds its own weights and gives its output's features only.", "Leave out the weight file and the feature block.");
            return Backbone.FromOnnx(source.Backbone, source.Onnx, source.InputSize, source.Device);
        }
        var config = BackboneRegistry.Get(source.Backbone);
        if (!config.Pretrained)
            throw new GraftException($"{config.Name} has no pretrained weights: its features mean nothing before training.", "Pick a pretrained backbone (graft models).");
        var backbone = Backbone.LoadPretrained(config, resolver ?? AssetResolver.Default, inputSize: source.InputSize ?? config.InputSize,
            weightsFile: source.WeightsFile);
        if (source.FeatureBlock is { } block) backbone.TruncateAfter(block);
        return backbone;
    }

    /// <summary>
    /// The features of a loaded backbone's trunk as it stands (pretrained, truncated, or a trained model's), pooled, resized,
    /// batched and cached as <paramref name="source"/> says, on its device (the backbone moves there); its cache entries
    /// are keyed by the backbone's weights and <paramref name="source"/>'s feature block.
    /// </summary>
    public static async Task<ImageFeatures> ExtractAsync(IReadOnlyList<string> paths, Backbone backbone, FeatureSource source,
        IProgress<ImageProgress>? progress = null, CancellationToken cancel = default)
    {
        using var extraction = FeatureExtraction.Open(backbone, source);
        return await extraction.ExtractAsync(paths, progress, cancel);
    }

    /// <summary>
    /// The features <paramref name="trunk"/> computes (<paramref name="channels"/> per image) for the images the cache does
    /// not hold yet; <paramref name="mirror"/> takes them of the left-right mirror images (test-time augmentation).
    /// </summary>
    public static async Task<ImageFeatures> ExtractAsync(IReadOnlyList<string> paths, ITrunkRunner trunk, ImageSpec spec,
        int channels, FeatureCache? cache, int batchSize = 32, IProgress<ImageProgress>? progress = null, CancellationToken cancel = default,
        bool mirror = false)
    {
        var rows = new float[]?[paths.Count];
        var keys = new string?[paths.Count];
        var skipped = new List<SkippedImage>();
        Parallel.For(0, paths.Count, i =>
        {
            try { keys[i] = FeatureCache.ContentKey(paths[i]); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) // unreadable (permissions): skipped like an undecodable image
            {
                lock (skipped) skipped.Add(new SkippedImage(paths[i], e.Message));
            }
        });
        // Images a run found undecodable are skipped with its reason, not decoded again.
        var undecodable = new string?[paths.Count];
        if (cache is not null)
            Parallel.For(0, paths.Count, i =>
            {
                if (keys[i] is not { } key) return;
                rows[i] = cache.TryGet(key);
                if (rows[i] is null) undecodable[i] = cache.TryGetUndecodable(key);
            });
        for (int i = 0; i < paths.Count; i++)
            if (undecodable[i] is { } reason) skipped.Add(new SkippedImage(paths[i], reason));

        var todo = Enumerable.Range(0, paths.Count).Where(i => rows[i] is null && keys[i] is not null && undecodable[i] is null).ToArray();
        var keyOfPath = new Dictionary<string, string>();
        foreach (int i in todo) keyOfPath.TryAdd(paths[i], keys[i]!);
        int hits = paths.Count - todo.Length - skipped.Count;
        var clock = Stopwatch.StartNew();
        int done = 0, computed = 0;
        progress?.Report(new ImageProgress("features", 0, todo.Length, 0));
        await foreach (var batch in BatchPipeline.Batches(todo.Select(i => paths[i]).ToList(), spec, batchSize, cancel: cancel))
        {
            skipped.AddRange(batch.Failures.Select(f => new SkippedImage(f.Path, f.Reason)));
            if (cache is not null)
                foreach (var failure in batch.Failures.Where(f => !f.MayRetry))
                    if (keyOfPath.TryGetValue(failure.Path, out var key)) cache.PutUndecodable(key, failure.Reason);
            if (batch.Count > 0)
            {
                using var scope = NewDisposeScope();
                var images = TorchDevices.Images(batch.Pixels, batch.Count, spec.Size, trunk.Device);
                if (mirror) images = images.flip(3).contiguous();
                var pooled = trunk.Features(images).cpu().contiguous().data<float>().ToArray();
                for (int k = 0; k < batch.Count; k++)
                {
                    int i = todo[batch.Indices[k]];
                    rows[i] = pooled.AsSpan(k * channels, channels).ToArray();
                    cache?.Put(keys[i]!, rows[i]);
                }
            }
            computed += batch.Count;
            done += batch.Count + batch.Failures.Count;
            progress?.Report(new ImageProgress("features", done, todo.Length, done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)));
        }
        return new ImageFeatures(paths, rows, channels, skipped.OrderBy(s => s.Path, StringComparer.Ordinal).ToList(), keys,
            new FeatureStats(paths.Count, hits, computed, clock.Elapsed.TotalSeconds), cache?.WriteError);
    }
}

/// <summary>
/// A backbone's trunk opened once for features as a <see cref="FeatureSource"/> describes them (pooling, resize, cache),
/// extracted in as many calls as a caller likes: a batch job writes each chunk's rows before it extracts the next.
/// </summary>
internal sealed class FeatureExtraction : IDisposable
{
    readonly ITrunkRunner _trunk;
    readonly ImageSpec _input;
    readonly FeatureCache? _cache;
    readonly int _batchSize;

    FeatureExtraction(ITrunkRunner trunk, ImageSpec input, int channels, FeatureCache? cache, int batchSize) =>
        (_trunk, _input, Channels, _cache, _batchSize) = (trunk, input, channels, cache, batchSize);

    /// <summary>Features per image.</summary>
    public int Channels { get; }

    /// <summary>The trunk of <paramref name="backbone"/> as it stands; its cache entries are keyed by its weights and the source's feature block.</summary>
    public static FeatureExtraction Open(Backbone backbone, FeatureSource source)
    {
        var device = TorchDevices.Resolve(source.Device);
        backbone.Network.to(device);
        var input = backbone.Input with { Resize = source.Resize };
        var (channels, positions) = backbone.FeatureShape(input.Size);
        if (source.Pooling == Pooling.Flatten) channels *= positions;
        var cache = source.UseCache
            ? new FeatureCache(source.CacheRoot ?? AssetResolver.DefaultCacheRoot(),
                FeatureCache.TrunkKey(backbone.Config.Name, backbone.WeightsId, input, source.Pooling, source.FeatureBlock ?? backbone.Onnx?.Spec.FeatureKey), channels)
            : null;
        var trunk = backbone.Onnx is { } onnx ? new ExternalTrunkRunner(onnx, device) : TrunkRunners.Create(backbone.Trunk, input.Size, source.Pooling);
        return new FeatureExtraction(trunk, input, channels, cache, source.BatchSize);
    }

    public Task<ImageFeatures> ExtractAsync(IReadOnlyList<string> paths, IProgress<ImageProgress>? progress = null, CancellationToken cancel = default) =>
        BottleneckFeatures.ExtractAsync(paths, _trunk, _input, Channels, _cache, _batchSize, progress, cancel);

    public void Dispose() => _trunk.Dispose();
}
