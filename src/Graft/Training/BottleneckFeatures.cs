using Graft.Backbones;
using Graft.Data;
using Graft.Engine;
using Graft.Weights;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;

namespace Graft.Training;

/// <summary>
/// Which trunk features to take: the choices feature-extraction training makes, so that the advisor and the
/// audit read the same bottleneck cache entries a training run wrote (and seconds after a first run).
/// </summary>
internal sealed record FeatureSource(string Backbone)
{
    /// <summary>The user's own weight file; null: the registry's sources.</summary>
    public string? WeightsFile { get; init; }
    /// <summary>The network's input size; null: the backbone's default.</summary>
    public int? InputSize { get; init; }
    /// <summary>Take features from this block; null: the trunk's last.</summary>
    public string? FeatureBlock { get; init; }
    public Pooling Pooling { get; init; } = Pooling.Gap;
    public ResizeMode Resize { get; init; } = ResizeMode.CenterCrop;
    /// <summary>Where the bottleneck cache lives; null for the user cache.</summary>
    public string? CacheRoot { get; init; }
    public bool UseCache { get; init; } = true;
    public int BatchSize { get; init; } = 32;
}

/// <summary>
/// Features of a list of images, in its order (null where an image was skipped), and each file's content key
/// (SHA-256; null where unreadable).
/// </summary>
internal sealed record ImageFeatures(IReadOnlyList<string> Paths, float[]?[] Rows, int Channels, IReadOnlyList<SkippedImage> Skipped,
    FeatureStats Stats, string? CacheWarning, IReadOnlyList<string?> ContentKeys);

internal static class BottleneckFeatures
{
    /// <summary>Runs the pretrained trunk over the images that the cache does not hold yet.</summary>
    public static async Task<ImageFeatures> ExtractAsync(IReadOnlyList<string> paths, FeatureSource source, AssetResolver? resolver = null,
        IProgress<ImageProgress>? progress = null, CancellationToken cancel = default)
    {
        TorchRuntime.EnsureInitialized();
        var config = BackboneRegistry.Get(source.Backbone);
        if (!config.Pretrained)
            throw new GraftException($"{config.Name} has no pretrained weights: its features mean nothing before training.", "Pick a pretrained backbone (graft models).");
        int size = source.InputSize ?? config.InputSize;
        using var backbone = Backbone.LoadPretrained(config, resolver ?? AssetResolver.Default, inputSize: size, weightsFile: source.WeightsFile);
        if (source.FeatureBlock is { } block) backbone.TruncateAfter(block);
        var input = backbone.Input with { Resize = source.Resize };
        var (channels, positions) = backbone.FeatureShape(size);
        if (source.Pooling == Pooling.Flatten) channels *= positions;
        var key = FeatureCache.TrunkKey(config.Name, backbone.WeightsId, input, source.Pooling, source.FeatureBlock);
        var cache = source.UseCache ? new FeatureCache(source.CacheRoot ?? AssetResolver.DefaultCacheRoot(), key, channels) : null;
        using var trunk = TrunkRunners.Create(backbone.Trunk, size, source.Pooling);
        var extracted = await FeatureExtractor.ExtractAsync(paths, trunk, input, channels, cache, source.BatchSize, progress, cancel);
        return new ImageFeatures(paths, extracted.Features, channels, extracted.Skipped,
            new FeatureStats(paths.Count, extracted.CacheHits, extracted.Computed, extracted.Seconds), cache?.WriteError, extracted.ContentKeys);
    }
}
