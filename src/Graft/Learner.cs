using System.Diagnostics;
using Graft.Backbones;
using Graft.Data;
using Graft.Engine;
using Graft.Evaluation;
using Graft.Models;
using Graft.Training;
using Graft.Weights;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;
using static TorchSharp.torch;

namespace Graft;

/// <summary>
/// A trained model and its measurements: <see cref="Validation"/> picked the epoch (optimistic);
/// <see cref="Test"/>, when there are test images, was never looked at during training.
/// </summary>
public sealed record TrainingResult(TrainableClassifier Model, ImageDataset Dataset, FitResult Fit, EvaluationResult? Validation,
    EvaluationResult? Test, FeatureStats Features, IReadOnlyList<SkippedImage> Skipped, double Seconds)
{
    /// <summary>What quick checks on the cached features found (copies, leakage, outliers), in one sentence; null if nothing.</summary>
    public string? AuditSummary { get; init; }

    /// <summary>The number to report: the test accuracy when there is a test set, otherwise the validation one.</summary>
    public EvaluationResult? Headline => Test ?? Validation;
}

/// <summary>An evaluation: plain, and with test-time augmentation (image + mirror image averaged) when asked.</summary>
public sealed record EvaluationRun(EvaluationResult Result, EvaluationResult? Tta, ImageDataset Dataset, FeatureStats Features,
    IReadOnlyList<SkippedImage> Skipped, double Seconds);

/// <summary>
/// The high-level API: a folder of photos in, a trained classifier out (and evaluation of one).
/// Feature extraction: the frozen trunk runs once per image (bottleneck cache), then the head trains on the features.
/// </summary>
public static class Learner
{
    /// <summary>Trains on DATA (class folders, or train/ with val/ and/or test/) as <paramref name="options"/> say.</summary>
    public static async Task<TrainingResult> TrainAsync(string data, TrainOptions options, AssetResolver? resolver = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        Engine.TorchRuntime.EnsureInitialized(); // before anything touches TorchSharp's static state
        resolver ??= AssetResolver.Default;
        callbacks ??= Callbacks.None;
        if (!Enum.IsDefined(options.Strategy))
            throw new GraftException($"Unknown strategy '{options.Strategy.Name()}'.", $"Use one of: {string.Join(", ", StrategyNames.All)}.");
        var dataset = ImageFolder.OpenForTraining(data, options.ValidationSplit, options.Fit.Seed, options.TestSplit);
        if (options.Strategy == Strategy.Auto)
        {
            // The advisor sees this run's training and validation images, never its test images.
            var advice = await StrategyAdvisor.AdviseAsync(dataset, options, resolver, callbacks, cancel);
            foreach (var reason in advice.Reasons) callbacks.Log?.Invoke($"advisor: {reason}");
            callbacks.Log?.Invoke($"advisor: {advice.Arguments}");
            // What the user chose explicitly stands; the advice fills in the rest.
            if (advice.Strategy == Strategy.FineTune && options.Unfreeze is { } mine && advice.Unfreeze is not null)
                callbacks.Log?.Invoke($"advisor: fine-tuning {mine.Describe()} as asked, not {advice.Unfreeze.Describe()}");
            if (options.FeatureBlock is { } asked && advice.FeatureBlock is not null)
                callbacks.Log?.Invoke($"advisor: features from {asked} as asked, not {advice.FeatureBlock}");
            options = options with { Strategy = advice.Strategy, Unfreeze = options.Unfreeze ?? advice.Unfreeze, FeatureBlock = options.FeatureBlock ?? advice.FeatureBlock };
        }
        if (options.Exclude is { } csv) dataset = Audit.AuditActions.Apply(dataset, Audit.AuditActions.Read(csv), csv);
        return await TrainAsync(dataset, options, resolver, callbacks, cancel);
    }

    /// <summary>
    /// Trains on images already split into roles (a subset, or a split of one's own); <see cref="TrainOptions.ValidationSplit"/>
    /// and <see cref="TrainOptions.TestSplit"/> are recorded only, and the strategy must be a concrete one (not auto).
    /// </summary>
    public static async Task<TrainingResult> TrainAsync(ImageDataset dataset, TrainOptions options, AssetResolver? resolver = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        Engine.TorchRuntime.EnsureInitialized();
        resolver ??= AssetResolver.Default;
        callbacks ??= Callbacks.None;
        if (options.Strategy is Strategy.Auto || !Enum.IsDefined(options.Strategy))
            throw new GraftException($"Training on a prepared dataset needs a concrete strategy, not '{options.Strategy.Name()}'.",
                $"Use one of: {Strategy.FeatureExtraction.Name()}, {Strategy.FineTune.Name()}, {Strategy.Scratch.Name()}.");
        var data = dataset.Root;
        bool scratch = options.Strategy == Strategy.Scratch, live = options.Strategy != Strategy.FeatureExtraction;
        if (!live && options.Augmentation is { IsIdentity: false })
            throw new GraftException("Augmentation needs the trunk to run on every image, and feature extraction caches its output once.",
                "Use --strategy fine-tune to train with augmentation.");
        if (options.Precision == Precision.Int8 && live)
            throw new GraftException($"--precision int8 quantizes a frozen trunk, and {options.Strategy.Name()} trains the trunk.", "Use --strategy feature-extraction, or --precision float.");
        if (options.BatchNorm && Math.Min(options.Fit.BatchSize, live && !scratch ? options.FineTune.BatchSize : int.MaxValue) < 2)
            throw new GraftException("--batchnorm needs batches of at least 2 (batch norm takes statistics over the batch).", "Use --batch-size 2 or more.");
        var clock = Stopwatch.StartNew();
        var config = BackboneRegistry.Get(options.BackboneOrDefault);
        callbacks.Log?.Invoke($"{dataset.Root}: {dataset.Classes.Count} classes ({string.Join(", ", dataset.Classes)}), " +
            $"{dataset.Train.Count} training, {dataset.Validation.Count} validation and {dataset.Test.Count} test images ({dataset.Layout})");

        manual_seed(options.Fit.Seed);
        int size = options.InputSize ?? config.InputSize;
        var backbone = scratch
            ? Backbone.Create(config, new(size), config.Spec(size))
            : Backbone.LoadPretrained(config, resolver, inputSize: size, weightsFile: options.WeightsFile);
        if (backbone.LoadReport is { } report) callbacks.Log?.Invoke($"{config.Name}: {report}");
        if (options.FeatureBlock is { } block) backbone.TruncateAfter(block);
        var input = backbone.Input with { Resize = options.Resize };
        var calibration = options.Precision == Precision.Int8
            ? await Int8Trunk.CalibrateAsync(backbone.Trunk, config.Name, input, dataset.Train, cancel: cancel) : null;
        if (calibration is not null) callbacks.Log?.Invoke($"int8 trunk: calibrated on {calibration.Images} training images");
        var pooling = options.PoolingOrDefault;
        var (channels, positions) = backbone.FeatureShape(input.Size);
        var headConfig = new HeadConfig(pooling == Heads.Pooling.Gap ? channels : channels * positions, dataset.Classes.Count,
            options.HiddenOrDefault, options.DropoutOrDefault, options.BatchNorm, pooling)
        {
            Binary = options.Binary, SqueezeExcite = options.SqueezeExcite, TrunkChannels = channels,
        };
        var modelConfig = new ModelConfig(ModelConfig.CurrentFormat, config.Name, backbone.WeightsId, input, dataset.Classes,
            headConfig, options.Strategy.Name(), options.Fit, null, DateTime.UtcNow)
        {
            Architecture = backbone.Architecture,
            FineTune = options.Strategy == Strategy.FineTune ? options.FineTune : null,
            Unfreeze = options.Strategy == Strategy.FineTune ? options.UnfreezeOrDefault : null,
            Augmentation = live ? options.AugmentationOrDefault : null,
            FeatureBlock = options.FeatureBlock,
            Precision = options.Precision,
            Calibration = calibration,
        };
        var model = new TrainableClassifier(modelConfig, backbone, headConfig.Build(), []);
        float[]? classWeights = options.BalancedClassWeights ? BalancedWeights(dataset) : null;

        var history = new List<EpochRecord>();
        var stats = new FeatureStats(0, 0, 0, 0);
        IReadOnlyList<SkippedImage> skipped = [];
        EvaluationResult? validation = null, test = null;
        string? auditSummary = null;
        FitResult? fit = null;
        if (!scratch)
        {
            // Feature extraction, and fine-tuning's phase 1: the head learns on cached trunk features.
            var phase1 = await TrainHeadOnFeaturesAsync(model, dataset, options, classWeights, callbacks, cancel);
            (fit, stats, skipped, validation, test, auditSummary) = (phase1.Fit, phase1.Stats, phase1.Skipped, phase1.Validation, phase1.Test, phase1.AuditSummary);
            history.AddRange(fit.History);
        }
        if (live)
        {
            var unreadable = skipped.Select(s => s.Path).ToHashSet();
            var train = dataset.Train.Where(i => !unreadable.Contains(i.Path)).ToList();
            var val = dataset.Validation.Where(i => !unreadable.Contains(i.Path)).ToList();
            var phase = scratch ? options.Fit : options.FineTune;
            var groups = TrainableGroups(model, options, scratch);
            callbacks.Log?.Invoke(scratch
                ? $"training {config.Name} from scratch: {groups.Sum(g => g.Parameters.Sum(p => p.numel())):N0} parameters, live augmentation"
                : $"fine-tuning {options.UnfreezeOrDefault.Describe()} of the trunk with the head: {phase.Optimizer} lr {phase.LearningRate}, live augmentation");
            // What stays frozen up to a clean cut runs as inference (ONNX Runtime), outside autograd; the rest trains.
            var frozenEnd = scratch ? null : Freezing.FrozenPrefixEnd(backbone.Trunk);
            using var frozen = frozenEnd is null ? null : TrunkRunners.Create(backbone.Trunk.Through(frozenEnd), input.Size, pooling: null);
            var trainedPart = frozenEnd is null ? backbone.Trunk : backbone.Trunk.From(frozenEnd);
            if (frozenEnd is not null) callbacks.Log?.Invoke($"layers up to {frozenEnd} are frozen: they run as inference ({(TrunkRunners.UseOnnxRuntime ? "ONNX Runtime" : "libtorch")})");
            var network = new GraftedNetwork(trainedPart, pooling, model.Head); // shares (does not own) trunk and head
            var liveOptions = new LiveFitOptions(phase, options.AugmentationOrDefault, options.Schedule, classWeights,
                options.CheckpointPath, options.Resume, Fingerprint(dataset, options))
            {
                FrozenInput = frozen,
                ClassFolders = Enumerable.Range(0, dataset.Classes.Count).Select(dataset.ClassFolder).ToList(),
                LearningRateOption = scratch ? "--lr" : "--ft-lr",
            };
            var live2 = await ImageTrainer.FitAsync(network, groups, train, val, input, liveOptions, callbacks, cancel);
            skipped = skipped.Concat(live2.Skipped.Where(s => !unreadable.Contains(s.Path))).ToList();
            int offset = history.Count;
            history.AddRange(live2.History.Select(h => h with { Epoch = h.Epoch + offset }));
            if (live2.Diverged is { } why) callbacks.Log?.Invoke($"warning: {why}");
            fit = new FitResult(history, live2.BestEpoch + offset, live2.StoppedEarly, live2.SamplesPerSecond) { Diverged = live2.Diverged ?? fit?.Diverged };
            foreach (var p in backbone.Trunk.parameters()) p.requires_grad = false;
            model.ResetTrunkRunner();
            validation = val.Count > 0 ? (await ScoreImagesAsync(model, val, callbacks, cancel)).Result : null;
            var testImages = dataset.Test.Where(i => !unreadable.Contains(i.Path)).ToList();
            test = testImages.Count > 0 ? (await ScoreImagesAsync(model, testImages, callbacks, cancel)).Result : null;
            if (options.CheckpointPath is { } done && File.Exists(done)) File.Delete(done);
        }

        var unreadableFiles = skipped.Select(s => s.Path).ToHashSet();
        model.ResetTrunkRunner(); // the trained classifier below takes over trunk and head
        var trained = new TrainableClassifier(modelConfig with
        {
            Dataset = new DatasetInfo(Path.GetFullPath(data), dataset.Layout, dataset.Train.Count(i => !unreadableFiles.Contains(i.Path)),
                validation?.Images ?? 0, skipped.Count)
            {
                TestImages = test?.Images ?? 0, ValidationSplit = options.ValidationSplit, TestSplit = options.TestSplit, Seed = options.Fit.Seed,
            },
        }, backbone, model.Head, history);
        return new TrainingResult(trained, dataset, fit!, validation, test, stats, skipped, clock.Elapsed.TotalSeconds) { AuditSummary = auditSummary };
    }

    sealed record HeadPhase(FitResult Fit, FeatureStats Stats, IReadOnlyList<SkippedImage> Skipped, EvaluationResult? Validation, EvaluationResult? Test,
        string? AuditSummary);

    /// <summary>Runs the frozen trunk once per image (bottleneck cache) and trains the head on the features.</summary>
    static async Task<HeadPhase> TrainHeadOnFeaturesAsync(TrainableClassifier model, ImageDataset dataset, TrainOptions options,
        float[]? classWeights, Callbacks callbacks, CancellationToken cancel)
    {
        int channels = model.Config.Head.InputChannels;
        var cache = options.UseCache ? new FeatureCache(options.CacheRoot ?? AssetResolver.DefaultCacheRoot(), model.Config.TrunkKey, channels) : null;
        var all = dataset.All.ToList();
        var extracted = await BottleneckFeatures.ExtractAsync(all.Select(i => i.Path).ToList(), model.Trunk, model.Config.Input,
            channels, cache, options.Fit.BatchSize, callbacks.Images, cancel);
        callbacks.Log?.Invoke(extracted.Stats.Computed == 0
            ? $"bottleneck cache: all {extracted.Stats.CacheHits} images cached, trunk skipped"
            : $"bottleneck features: {extracted.Stats.Computed} computed at {extracted.Stats.ImagesPerSecond:0} images/s, {extracted.Stats.CacheHits} from cache");
        WarnIfCacheFailed(cache, callbacks);

        var train = Gather(dataset.Train, 0, extracted.Rows);
        var val = Gather(dataset.Validation, dataset.Train.Count, extracted.Rows);
        var test = Gather(dataset.Test, dataset.Train.Count + dataset.Validation.Count, extracted.Rows);
        if (train.Labels.Length == 0)
            throw new GraftException($"No training image in {dataset.Root} could be read{FirstReason(extracted.Skipped, _ => true)}.", "Replace the damaged images, or check the folder's permissions.");
        // A class none of whose training images could be read cannot be learned: training would "succeed" without it.
        var readable = train.Labels.ToHashSet();
        if (Enumerable.Range(0, dataset.Classes.Count).FirstOrDefault(c => !readable.Contains(c), -1) is var missing and >= 0)
        {
            var folder = dataset.ClassFolder(missing);
            var ofClass = dataset.Train.Where(i => i.Label == missing).Select(i => i.Path).ToHashSet();
            throw new GraftException($"None of the training images of {folder} could be read{FirstReason(extracted.Skipped, s => ofClass.Contains(s.Path))}; a class needs at least one readable image.",
                "Replace the damaged images, or remove the class folder.");
        }
        using var trainX = Features(train, channels);
        using var trainY = tensor(train.Labels.Select(l => (long)l).ToArray());
        using var valX = Features(val, channels);
        using var valY = tensor(val.Labels.Select(l => (long)l).ToArray());
        bool hasVal = val.Labels.Length > 0;
        var fit = HeadTrainer.Fit(model.Head, trainX, trainY, hasVal ? valX : null, hasVal ? valY : null, options.Fit, callbacks.Epochs, cancel, classWeights);
        if (fit.Diverged is { } why) callbacks.Log?.Invoke($"warning: {why}");
        var stats = extracted.Stats;
        EvaluationResult? testResult = null;
        if (test.Labels.Length > 0)
        {
            using var testX = Features(test, channels);
            testResult = Score(model, test, testX);
        }
        return new HeadPhase(fit, stats, extracted.Skipped, hasVal ? Score(model, val, valX) : null, testResult,
            Audit.DataAudit.QuickSummary(dataset, extracted.ContentKeys, extracted.Rows));
    }

    /// <summary>
    /// What live training updates: the head at the base learning rate and, when fine-tuning, the unfrozen
    /// blocks, each block's rate the discriminative factor times the one above it; everything from scratch.
    /// </summary>
    static List<ParameterGroup> TrainableGroups(TrainableClassifier model, TrainOptions options, bool scratch)
    {
        if (scratch)
        {
            var all = model.Backbone.Trunk.parameters().Concat(model.Head.parameters()).ToList();
            foreach (var p in all) p.requires_grad = true;
            return [new ParameterGroup(all, 1.0)];
        }
        var blocks = Freezing.Apply(model.Backbone.Trunk, options.UnfreezeOrDefault);
        var groups = new List<ParameterGroup> { new(model.Head.parameters().ToList(), 1.0) };
        groups.AddRange(blocks.Select(b => new ParameterGroup(b.Parameters, Math.Pow(options.DiscriminativeFactor, b.DepthFromTop + 1))));
        return groups;
    }

    static float[] BalancedWeights(ImageDataset dataset)
    {
        var counts = Enumerable.Range(0, dataset.Classes.Count).Select(c => dataset.Train.Count(i => i.Label == c)).ToArray();
        return counts.Select(n => n == 0 ? 0f : (float)dataset.Train.Count / (dataset.Classes.Count * n)).ToArray();
    }

    /// <summary>
    /// Identifies a run for checkpoints: the images and every option that changes the result so far.
    /// Patience may change on resume, and so may the epoch limit (to train longer) unless a learning-rate
    /// schedule spreads its curve over the epochs.
    /// </summary>
    static string Fingerprint(ImageDataset dataset, TrainOptions options)
    {
        bool epochsShapeTheRates = options.Schedule != LrSchedule.Constant;
        var relevant = options with
        {
            CheckpointPath = null, Resume = false, CacheRoot = null, UseCache = true,
            Fit = options.Fit with { Epochs = epochsShapeTheRates ? options.Fit.Epochs : 0, Patience = 0 },
            FineTune = options.FineTune with { Epochs = epochsShapeTheRates ? options.FineTune.Epochs : 0, Patience = 0 },
        };
        var text = System.Text.Json.JsonSerializer.Serialize(relevant, TrainableClassifier.Json) + "|" +
                   string.Join("|", dataset.All.Select(i => $"{i.Path}:{i.Label}"));
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..32];
    }

    /// <summary>
    /// Evaluates a model on DATA's validation folder, or on all of a plain class-folder set. Uses the
    /// bottleneck cache when the model's trunk is the pretrained one.
    /// </summary>
    public static async Task<EvaluationRun> EvaluateAsync(TrainableClassifier model, string data, string? cacheRoot = null,
        Callbacks? callbacks = null, bool tta = false, CancellationToken cancel = default)
    {
        Engine.TorchRuntime.EnsureInitialized();
        callbacks ??= Callbacks.None;
        var clock = Stopwatch.StartNew();
        var dataset = ImageFolder.OpenForEvaluation(data, model.Classes, model.Config.Dataset);
        var images = dataset.Validation;
        var paths = images.Select(i => i.Path).ToList();

        var plain = await ExtractForModel(model, paths, cacheRoot, mirror: false, callbacks, cancel);
        var set = Gather(images, 0, plain.Rows);
        if (set.Files.Length == 0)
            throw new GraftException($"None of the {images.Count} images in {dataset.ClassRoot} could be read{FirstReason(plain.Skipped, _ => true)}; there is nothing to evaluate.",
                "Replace the damaged images, or check the folder's permissions.");
        using var x = Features(set, plain.Channels);
        var probabilities = HeadTrainer.Score(model.Head, x, null).Probabilities;
        var result = EvaluationResult.From(set.Files, probabilities, set.Labels, model.Classes);

        EvaluationResult? withTta = null;
        if (tta)
        {
            var mirrored = await ExtractForModel(model, paths, cacheRoot, mirror: true, callbacks, cancel);
            using var xm = Features(Gather(images, 0, mirrored.Rows), plain.Channels);
            var mirrorProbabilities = HeadTrainer.Score(model.Head, xm, null).Probabilities;
            withTta = EvaluationResult.From(set.Files, Average(probabilities, mirrorProbabilities), set.Labels, model.Classes);
        }
        return new EvaluationRun(result, withTta, dataset,
            plain.Stats, plain.Skipped, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Scores images with a model through its trunk (no cache: used when the trunk itself was trained).</summary>
    static async Task<(EvaluationResult Result, ImageFeatures Extracted)> ScoreImagesAsync(TrainableClassifier model, IReadOnlyList<LabeledImage> images,
        Callbacks callbacks, CancellationToken cancel)
    {
        var features = await ExtractForModel(model, images.Select(i => i.Path).ToList(), null, mirror: false, callbacks, cancel);
        var set = Gather(images, 0, features.Rows);
        using var x = Features(set, features.Channels);
        return (Score(model, set, x), features);
    }

    /// <summary>Pooled trunk features for the model's images, through the bottleneck cache when its trunk is the pretrained one.</summary>
    static async Task<ImageFeatures> ExtractForModel(TrainableClassifier model, IReadOnlyList<string> paths, string? cacheRoot, bool mirror,
        Callbacks callbacks, CancellationToken cancel)
    {
        var channels = model.Config.Head.InputChannels;
        var cache = model.Config.Strategy == Strategy.FeatureExtraction.Name()
            ? new FeatureCache(cacheRoot ?? AssetResolver.DefaultCacheRoot(), model.Config.TrunkKey + (mirror ? "|mirror" : ""), channels)
            : null;
        var extracted = await BottleneckFeatures.ExtractAsync(paths, model.Trunk, model.Config.Input, channels, cache,
            model.Config.Training.BatchSize, callbacks.Images, cancel, mirror);
        WarnIfCacheFailed(cache, callbacks);
        return extracted;
    }

    /// <summary>The bottleneck cache is optional: when it could not be written the run went on without it, and says so.</summary>
    static void WarnIfCacheFailed(FeatureCache? cache, Callbacks callbacks)
    {
        if (cache?.WriteError is { } why)
            callbacks.Log?.Invoke($"warning: the feature cache could not be written ({why}); features were computed without caching");
    }

    /// <summary>" (file: reason)" of the first skipped image that matches, for a one-line error.</summary>
    static string FirstReason(IReadOnlyList<SkippedImage> skipped, Func<SkippedImage, bool> which) =>
        skipped.FirstOrDefault(which) is { } s ? $" ({Path.GetFileName(s.Path)}: {GraftException.FirstLine(s.Reason)})" : "";

    static float[,] Average(float[,] a, float[,] b)
    {
        var result = new float[a.GetLength(0), a.GetLength(1)];
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++) result[i, j] = (a[i, j] + b[i, j]) / 2;
        return result;
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

    static EvaluationResult Score(TrainableClassifier model, FeatureSet set, Tensor x)
    {
        var scored = HeadTrainer.Score(model.Head, x, null);
        return EvaluationResult.From(set.Files, scored.Probabilities, set.Labels, model.Classes);
    }
}
