using System.Diagnostics;
using Graft.Backbones;
using Graft.Data;
using Graft.Evaluation;
using Graft.Models;
using Graft.Training;
using Graft.Weights;
using static TorchSharp.torch;

namespace Graft;

public sealed record TrainOptions
{
    public string Backbone { get; init; } = "mobilenet_v2";
    public string Strategy { get; init; } = Strategies.FeatureExtraction;
    public int Hidden { get; init; }
    public double Dropout { get; init; } = 0.2;
    public bool BatchNorm { get; init; }
    public double ValidationSplit { get; init; } = 0.2;
    public ResizeMode Resize { get; init; } = ResizeMode.CenterCrop;
    public FitOptions Fit { get; init; } = new();
    /// <summary>Where the bottleneck cache lives; null for the user cache (~/.cache/graft).</summary>
    public string? CacheRoot { get; init; }
    public bool UseCache { get; init; } = true;
}

public static class Strategies
{
    public const string FeatureExtraction = "feature-extraction";
    public static readonly string[] All = [FeatureExtraction];
}

/// <summary>Where long work reports to; the library never prints.</summary>
public sealed record Callbacks(IProgress<ImageProgress>? Images = null, IProgress<EpochProgress>? Epochs = null, Action<string>? Log = null)
{
    public static readonly Callbacks None = new();
}

public sealed record FeatureStats(int Images, int CacheHits, int Computed, double Seconds)
{
    public double ImagesPerSecond => Computed / Math.Max(Seconds, 1e-9);
}

public sealed record TrainingResult(ImageClassifier Model, ImageDataset Dataset, FitResult Fit, EvaluationResult? Validation,
    FeatureStats Features, IReadOnlyList<SkippedImage> Skipped, double Seconds);

public sealed record EvaluationRun(EvaluationResult Result, ImageDataset Dataset, FeatureStats Features, IReadOnlyList<SkippedImage> Skipped, double Seconds);

/// <summary>
/// The high-level API: a folder of photos in, a trained classifier out (and evaluation of one).
/// Feature extraction: the frozen trunk runs once per image (bottleneck cache), then the head trains on the features.
/// </summary>
public static class Learner
{
    public static async Task<TrainingResult> TrainAsync(string data, TrainOptions options, AssetResolver? resolver = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        resolver ??= AssetResolver.Default;
        callbacks ??= Callbacks.None;
        if (!Strategies.All.Contains(options.Strategy))
            throw new GraftException($"Unknown strategy '{options.Strategy}'.", $"Use one of: {string.Join(", ", Strategies.All)}.");
        var clock = Stopwatch.StartNew();
        var config = BackboneRegistry.Get(options.Backbone);
        var dataset = ImageFolder.OpenForTraining(data, options.ValidationSplit, options.Fit.Seed);
        callbacks.Log?.Invoke($"{dataset.Root}: {dataset.Classes.Count} classes ({string.Join(", ", dataset.Classes)}), " +
            $"{dataset.Train.Count} training and {dataset.Validation.Count} validation images ({dataset.Layout})");

        var backbone = Backbone.LoadPretrained(config, resolver);
        var input = backbone.Input with { Resize = options.Resize };
        var headConfig = new HeadConfig(config.FeatureChannels, dataset.Classes.Count, options.Hidden, options.Dropout, options.BatchNorm);
        var modelConfig = new ModelConfig(ModelConfig.CurrentFormat, config.Name, config.Weights.Sha256, input, dataset.Classes,
            headConfig, options.Strategy, options.Fit, null, DateTime.UtcNow);

        manual_seed(options.Fit.Seed);
        var model = new ImageClassifier(modelConfig, backbone, headConfig.Build(), []);
        var cache = options.UseCache ? new FeatureCache(options.CacheRoot ?? AssetResolver.DefaultCacheRoot(), modelConfig.TrunkKey, config.FeatureChannels) : null;

        var all = dataset.All.ToList();
        var extracted = await FeatureExtractor.ExtractAsync(all.Select(i => i.Path).ToList(), model.Trunk, input,
            config.FeatureChannels, cache, options.Fit.BatchSize, callbacks.Images, cancel);
        var stats = new FeatureStats(all.Count, extracted.CacheHits, extracted.Computed, extracted.Seconds);
        callbacks.Log?.Invoke(extracted.Computed == 0
            ? $"bottleneck cache: all {extracted.CacheHits} images cached, trunk skipped"
            : $"bottleneck features: {extracted.Computed} computed at {extracted.ImagesPerSecond:0} images/s, {extracted.CacheHits} from cache");

        var train = Gather(dataset.Train, 0, extracted.Features);
        var val = Gather(dataset.Validation, dataset.Train.Count, extracted.Features);
        if (train.Labels.Length == 0)
            throw new GraftException($"No training image in {data} could be read.", "Check the skipped files listed above.");

        using var trainX = Features(train, config.FeatureChannels);
        using var trainY = tensor(train.Labels.Select(l => (long)l).ToArray());
        using var valX = Features(val, config.FeatureChannels);
        using var valY = tensor(val.Labels.Select(l => (long)l).ToArray());
        bool hasVal = val.Labels.Length > 0;
        var fit = HeadTrainer.Fit(model.Head, trainX, trainY, hasVal ? valX : null, hasVal ? valY : null, options.Fit, callbacks.Epochs, cancel);

        var validation = hasVal ? Score(model, val, valX) : null;
        var trained = new ImageClassifier(modelConfig with
        {
            Dataset = new DatasetInfo(Path.GetFullPath(data), dataset.Layout, train.Labels.Length, val.Labels.Length, extracted.Skipped.Count),
        }, backbone, model.Head, fit.History);
        return new TrainingResult(trained, dataset, fit, validation, stats, extracted.Skipped, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Evaluates a model on DATA's validation folder, or on all of a plain class-folder set. Uses the
    /// bottleneck cache when the model's trunk is the pretrained one.
    /// </summary>
    public static async Task<EvaluationRun> EvaluateAsync(ImageClassifier model, string data, string? cacheRoot = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        callbacks ??= Callbacks.None;
        var clock = Stopwatch.StartNew();
        var dataset = ImageFolder.OpenForEvaluation(data, model.Classes);
        var channels = BackboneRegistry.Get(model.Config.Backbone).FeatureChannels;
        var cache = model.Config.Strategy == Strategies.FeatureExtraction
            ? new FeatureCache(cacheRoot ?? AssetResolver.DefaultCacheRoot(), model.Config.TrunkKey, channels)
            : null;
        var images = dataset.Validation;
        var extracted = await FeatureExtractor.ExtractAsync(images.Select(i => i.Path).ToList(), model.Trunk, model.Config.Input,
            channels, cache, model.Config.Training.BatchSize, callbacks.Images, cancel);
        var set = Gather(images, 0, extracted.Features);
        using var x = Features(set, channels);
        var result = Score(model, set, x);
        return new EvaluationRun(result, dataset, new FeatureStats(images.Count, extracted.CacheHits, extracted.Computed, extracted.Seconds),
            extracted.Skipped, clock.Elapsed.TotalSeconds);
    }

    sealed record FeatureSet(string[] Files, int[] Labels, float[][] Rows);

    /// <summary>The images of one part whose features exist (skipped images drop out).</summary>
    static FeatureSet Gather(IReadOnlyList<LabeledImage> images, int offset, float[]?[] features)
    {
        var keep = Enumerable.Range(0, images.Count).Where(i => features[offset + i] is not null).ToArray();
        return new FeatureSet(keep.Select(i => images[i].Path).ToArray(), keep.Select(i => images[i].Label).ToArray(),
            keep.Select(i => features[offset + i]!).ToArray());
    }

    static Tensor Features(FeatureSet set, int channels)
    {
        var flat = new float[set.Rows.Length * channels];
        for (int i = 0; i < set.Rows.Length; i++) set.Rows[i].CopyTo(flat, i * channels);
        return tensor(flat, [set.Rows.Length, channels]);
    }

    static EvaluationResult Score(ImageClassifier model, FeatureSet set, Tensor x)
    {
        var scored = HeadTrainer.Score(model.Head, x, null);
        return EvaluationResult.From(set.Files, scored.Probabilities, set.Labels, model.Classes);
    }
}
