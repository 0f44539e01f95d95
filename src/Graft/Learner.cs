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
using TorchSharp;
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

    /// <summary>The learning-rate range test that chose the rate (<see cref="TrainOptions.AutoLearningRate"/>); null without one.</summary>
    public LearningRateSearch? LearningRateSearch { get; init; }

    /// <summary>
    /// Fine-tuning only: whether the fine-tuned trunk was kept (true), or the head on the pretrained trunk because
    /// fine-tuning did not validate above it (false); null for other strategies or without validation images.
    /// </summary>
    public bool? FineTuningKept { get; init; }

    /// <summary>Growing a model (<see cref="TrainOptions.From"/>): the earlier and the grown model on the same images, per class; null otherwise.</summary>
    public GrowthResult? Growth { get; init; }

    /// <summary>The number to report: the test accuracy when there is a test set, otherwise the validation one (single-label).</summary>
    public EvaluationResult? Headline => Test ?? Validation;

    /// <summary>
    /// A multi-label run's measurements on the validation images (at the thresholds they chose, so optimistic) and on the
    /// test images; <see cref="Validation"/> and <see cref="Test"/> are then null.
    /// </summary>
    public MultiLabelResult? MultiLabelValidation { get; init; }
    /// <summary>A multi-label run's measurements on its test images, at the thresholds the validation images chose (null: no test images, or single-label).</summary>
    public MultiLabelResult? MultiLabelTest { get; init; }
}

/// <summary>An evaluation: plain, and with test-time augmentation (image + mirror image averaged) when asked.</summary>
public sealed record EvaluationRun(EvaluationResult Result, EvaluationResult? Tta, ImageDataset Dataset, FeatureStats Features,
    IReadOnlyList<SkippedImage> Skipped, double Seconds);

/// <summary>A multi-label model's evaluation (at its decision thresholds).</summary>
public sealed record MultiLabelEvaluationRun(MultiLabelResult Result, ImageDataset Dataset, FeatureStats Features, IReadOnlyList<SkippedImage> Skipped,
    double Seconds);

/// <summary>
/// The high-level API: a folder of photos in, a trained classifier out (and evaluation of one).
/// Feature extraction: the frozen trunk runs once per image (bottleneck cache), then the head trains on the features.
/// </summary>
public static class Learner
{
    /// <summary>
    /// Trains on DATA (class folders, or train/ with val/ and/or test/; or the images a label file names,
    /// <see cref="TrainOptions.LabelsFile"/>) as <paramref name="options"/> say.
    /// </summary>
    public static async Task<TrainingResult> TrainAsync(string data, TrainOptions options, AssetResolver? resolver = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        var started = DateTime.UtcNow;
        var (dataset, chosen, start) = await OpenAsync(data, options, resolver, callbacks, cancel);
        return await RunAsync(dataset, chosen, start, resolver ?? AssetResolver.Default, callbacks ?? Callbacks.None, searchOnly: false, cancel, started);
    }

    /// <summary>
    /// The learning-rate range test of the phase the run would train on images or features (fine-tuning's phase 2 after
    /// the head has trained, the scratch network, or the head of feature extraction), without training further: what
    /// <see cref="TrainOptions.AutoLearningRate"/> would choose, and the curve it chose from.
    /// </summary>
    public static async Task<LearningRateSearch> FindLearningRateAsync(string data, TrainOptions options, AssetResolver? resolver = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        var (dataset, chosen, start) = await OpenAsync(data, options, resolver, callbacks, cancel);
        var run = await RunAsync(dataset, chosen with { AutoLearningRate = true, CheckpointPath = null }, start, resolver ?? AssetResolver.Default,
            callbacks ?? Callbacks.None, searchOnly: true, cancel, DateTime.UtcNow);
        run.Model.Dispose();
        return run.LearningRateSearch!;
    }

    /// <summary>
    /// DATA opened as `graft train` opens it, with auto's advice taken and the audit's exclusions applied; when growing a model,
    /// the model (its options taken, its classes first and its test images kept).
    /// </summary>
    static async Task<(ImageDataset Dataset, TrainOptions Options, TrainableClassifier? Start)> OpenAsync(string data, TrainOptions options, AssetResolver? resolver,
        Callbacks? callbacks, CancellationToken cancel)
    {
        TorchDevices.Resolve(options.Device); // before anything touches TorchSharp's static state, and before anything runs
        resolver ??= AssetResolver.Default;
        callbacks ??= Callbacks.None;
        if (!Enum.IsDefined(options.Strategy))
            throw new GraftException($"Unknown strategy '{options.Strategy.Name()}'.", $"Use one of: {string.Join(", ", StrategyNames.All)}.");
        CheckOnnx(options);
        var (start, chosen) = Start(options);
        try
        {
            var dataset = start is null ? ImageFolder.OpenForTraining(data, chosen.ValidationSplit, chosen.Fit.Seed, chosen.TestSplit, chosen.LabelsFile, chosen.MultiLabel)
                : Growing.Roles(start).Open(data, chosen.ValidationSplit, chosen.Fit.Seed, chosen.TestSplit);
            if (chosen.Strategy == Strategy.Auto) chosen = await TakeAdviceAsync(dataset, chosen, resolver, callbacks, cancel);
            if (chosen.Exclude is { } csv) dataset = Audit.AuditActions.Apply(dataset, Audit.AuditActions.Read(csv), csv);
            return (dataset, chosen, start);
        }
        catch
        {
            start?.Dispose();
            throw;
        }
    }

    /// <summary>The model to grow (<see cref="TrainOptions.From"/>) and the options it leaves; none, and the options as they are, otherwise.</summary>
    static (TrainableClassifier? Start, TrainOptions Options) Start(TrainOptions options)
    {
        if (options.From is not { } from) return (null, options);
        var start = Growing.Load(from, options);
        try { return (start, Growing.Options(start, options, from)); }
        catch
        {
            start.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Trains on images already split into roles (a subset, or a split of one's own); <see cref="TrainOptions.ValidationSplit"/>
    /// and <see cref="TrainOptions.TestSplit"/> are recorded only, and the strategy must be a concrete one (not auto).
    /// </summary>
    /// <remarks>
    /// Growing a model (<see cref="TrainOptions.From"/>): the dataset's classes must begin with the model's, in its order; its
    /// test images are the ones the dataset holds (<see cref="EarlierRoles.Open"/> keeps them).
    /// </remarks>
    public static Task<TrainingResult> TrainAsync(ImageDataset dataset, TrainOptions options, AssetResolver? resolver = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        var (start, chosen) = Start(options);
        return RunAsync(dataset, chosen, start, resolver ?? AssetResolver.Default, callbacks ?? Callbacks.None, searchOnly: false, cancel, DateTime.UtcNow);
    }

    /// <summary>
    /// The recipe: a model (new, or <paramref name="start"/> grown to the dataset's classes), the head on cached features, the
    /// live phase, the file's record; or, <paramref name="searchOnly"/>, up to the learning-rate range test.
    /// <paramref name="started"/>: when the run began, for its time budget.
    /// </summary>
    static async Task<TrainingResult> RunAsync(ImageDataset dataset, TrainOptions options, TrainableClassifier? start, AssetResolver resolver,
        Callbacks callbacks, bool searchOnly, CancellationToken cancel, DateTime started)
    {
        var clock = Stopwatch.StartNew();
        TrainableClassifier model;
        EvaluationResult? before = null;
        try
        {
            var device = TorchDevices.Resolve(options.Device);
            Check(options);
            if (start is not null) Growing.CheckData(start, dataset, options.From!);
            callbacks.Log?.Invoke($"{dataset.Root}: {dataset.Classes.Count} classes ({string.Join(", ", dataset.Classes)}), " +
                $"{dataset.Train.Count} training, {dataset.Validation.Count} validation and {dataset.Test.Count} test images ({dataset.Layout})");
            if (start is not null)
            {
                before = searchOnly ? null : await BeforeAsync(start, dataset, options, callbacks, cancel);
                model = HeadGrowth.Grow(start, Growing.Config(start, dataset, options), options.Fit.Seed);
                callbacks.Log?.Invoke($"growing {options.From}: {Plural.Of(start.Classes.Count, "class", "classes")} kept, " +
                    $"{Plural.Of(dataset.Classes.Count - start.Classes.Count, "class", "classes")} added");
                start.Head.Dispose(); // its backbone is the grown model's now
                start.Detector?.Dispose();
            }
            else model = await NewModelAsync(dataset, options, device, resolver, callbacks, cancel);
        }
        catch
        {
            start?.Dispose();
            throw;
        }
        float[]? classWeights = options.BalancedClassWeights ? dataset.MultiLabel ? PositiveWeights(dataset.Train, dataset.Classes.Count) : BalancedWeights(dataset) : null;
        bool cached = options.UseCache && (start is null || Growing.PretrainedTrunk(start));
        var run = options.Strategy == Strategy.Scratch ? EmptyRun(model, dataset)
            : await TrainHeadAsync(model, dataset, options, cached, classWeights, callbacks, searchOnly, cancel);
        if (searchOnly && run.LearningRateSearch is not null) return run;
        if (options.Strategy != Strategy.FeatureExtraction)
            run = await TrainLiveAsync(run, options, classWeights, callbacks, searchOnly, started + options.TimeBudget, cancel);
        if (searchOnly) return run;
        run = dataset.MultiLabel ? FitThresholds(run, callbacks) : await FitTrustAsync(run, options, callbacks, cancel);
        run = Finish(run, options, clock);
        if (start is null) return run;
        var part = Growing.Measured(dataset).Part;
        return run with { Growth = Growing.Compare(options.From!, start.Classes, dataset, part, before, part == "test" ? run.Test : run.Validation) };
    }

    /// <summary>The model to grow, before it grows: measured on the run's measured images (<see cref="Growing.Measured"/>) of the classes it knows.</summary>
    static async Task<EvaluationResult?> BeforeAsync(TrainableClassifier start, ImageDataset dataset, TrainOptions options, Callbacks callbacks,
        CancellationToken cancel)
    {
        var known = Growing.Measured(dataset).Images.Where(i => i.Label < start.Classes.Count).ToList();
        if (known.Count == 0) return null;
        var features = await FeaturesAsync(start, known, options.UseCache && Growing.PretrainedTrunk(start), options.CacheRoot, mirror: false, callbacks, cancel);
        var rows = features.ReadRows(0, known.Count);
        if (rows.Length == 0) return null;
        using var x = features.Stack(rows, start.Device);
        return Evaluate(start, known, rows, Probabilities(start, x));
    }

    /// <summary>A run that has trained nothing yet.</summary>
    static TrainingResult EmptyRun(TrainableClassifier model, ImageDataset dataset) =>
        new(model, dataset, new FitResult([], 0, false, 0), null, null, new FeatureStats(0, 0, 0, 0), [], 0);

    /// <summary>Auto: the advisor measures this run's training and validation images (never its test images) and fills in what the user left open.</summary>
    static async Task<TrainOptions> TakeAdviceAsync(ImageDataset dataset, TrainOptions options, AssetResolver resolver, Callbacks callbacks,
        CancellationToken cancel)
    {
        var advice = await StrategyAdvisor.AdviseAsync(dataset, options, resolver, callbacks, cancel);
        foreach (var reason in advice.Reasons) callbacks.Log?.Invoke($"advisor: {reason}");
        callbacks.Log?.Invoke($"advisor: {advice.Arguments}");
        // What the user chose explicitly stands; the advice fills in the rest.
        if (advice.Strategy == Strategy.FineTune && options.Unfreeze is { } mine && advice.Unfreeze is not null)
            callbacks.Log?.Invoke($"advisor: fine-tuning {mine.Describe()} as asked, not {advice.Unfreeze.Describe()}");
        if (options.FeatureBlock is { } asked && advice.FeatureBlock is not null)
            callbacks.Log?.Invoke($"advisor: features from {asked} as asked, not {advice.FeatureBlock}");
        return options with { Strategy = advice.Strategy, Unfreeze = options.Unfreeze ?? advice.Unfreeze, FeatureBlock = options.FeatureBlock ?? advice.FeatureBlock };
    }

    /// <summary>Options that cannot work together are refused before anything runs.</summary>
    static void Check(TrainOptions options)
    {
        CheckOnnx(options);
        if (options.Strategy is Strategy.Auto || !Enum.IsDefined(options.Strategy))
            throw new GraftException($"Training on a prepared dataset needs a concrete strategy, not '{options.Strategy.Name()}'.",
                $"Use one of: {Strategy.FeatureExtraction.Name()}, {Strategy.FineTune.Name()}, {Strategy.Scratch.Name()}.");
        bool live = options.Strategy != Strategy.FeatureExtraction;
        if (!live && options.Augmentation is { IsIdentity: false })
            throw new GraftException("Augmentation needs the trunk to run on every image, and feature extraction caches its output once.",
                "Use --strategy fine-tune to train with augmentation.");
        if (options.Precision == Precision.Int8 && live)
            throw new GraftException($"--precision int8 quantizes a frozen trunk, and {options.Strategy.Name()} trains the trunk.", "Use --strategy feature-extraction, or --precision float.");
        if (options.BatchNorm && Math.Min(options.Fit.BatchSize, options.Strategy == Strategy.FineTune ? options.FineTuneOrDefault.BatchSize : int.MaxValue) < 2)
            throw new GraftException("--batchnorm needs batches of at least 2 (batch norm takes statistics over the batch).", "Use --batch-size 2 or more.");
    }

    /// <summary>An ONNX trunk runs frozen and pooled, as it is: what would change or cut it is refused; its options need one.</summary>
    static void CheckOnnx(TrainOptions options)
    {
        if (!options.OnnxBackbone)
        {
            if (!options.Onnx.IsEmpty)
                throw new GraftException($"Preprocessing, mean, std, layout and output describe an ONNX backbone, and {options.BackboneOrDefault} is a registry network.",
                    "Leave them out, or pass an .onnx file as the backbone.");
            return;
        }
        if (options.Strategy is not (Strategy.FeatureExtraction or Strategy.Auto)) // auto: the advisor measures feature extraction only
            throw new GraftException($"An ONNX trunk cannot be trained ({options.Strategy.Name()}): an ONNX graph has no trainable weights in Graft, which runs it in ONNX Runtime only.",
                $"Use the {Strategy.FeatureExtraction.Name()} strategy, or a registry network to fine-tune.");
        string? refused = options.FeatureBlock is not null ? "features from an earlier block"
            : options.Precision != Precision.Float ? "an int8 trunk"
            : options.PoolingOrDefault != Heads.Pooling.Gap ? "a flattened feature map"
            : options.SqueezeExcite ? "a squeeze-and-excitation block on the feature map"
            : options.WeightsFile is not null ? "a weight file" : null;
        if (refused is not null)
            throw new GraftException($"An ONNX trunk gives pooled features from its own weights, so {refused} cannot apply to it.", "Leave that option out.");
    }

    /// <summary>
    /// The classifier to train: the backbone (pretrained, or untrained from scratch) cut where asked, its int8 calibration,
    /// a new head, and the config its file keeps. Everything random starts from the run's seed.
    /// </summary>
    static async Task<TrainableClassifier> NewModelAsync(ImageDataset dataset, TrainOptions options, Device device, AssetResolver resolver,
        Callbacks callbacks, CancellationToken cancel)
    {
        manual_seed(options.Fit.Seed);
        var backbone = options.OnnxBackbone ? Backbone.FromOnnx(options.Backbone!, options.Onnx, options.InputSize, options.Device) : NewBackbone(options, resolver);
        var config = backbone.Config;
        if (backbone.LoadReport is { } report) callbacks.Detail?.Invoke($"{config.Name}: {report}");
        if (options.FeatureBlock is { } block) backbone.TruncateAfter(block);
        backbone.Network.to(device); // built and initialized on the host (the same weights on every device), then moved
        var input = backbone.Input with { Resize = options.Resize };
        var calibration = options.Precision == Precision.Int8
            ? await Int8Trunk.CalibrateAsync(backbone.Trunk, config.Name, input, dataset.Train, cancel: cancel) : null;
        if (calibration is not null) callbacks.Log?.Invoke($"int8 trunk: calibrated on {calibration.Images} training images");
        var pooling = options.PoolingOrDefault;
        var (channels, positions) = backbone.FeatureShape(input.Size);
        var head = new HeadConfig(pooling == Heads.Pooling.Gap ? channels : channels * positions, dataset.Classes.Count,
            options.HiddenOrDefault, options.DropoutOrDefault, options.BatchNorm, pooling)
        {
            Binary = options.Binary, MultiLabel = dataset.MultiLabel, SqueezeExcite = options.SqueezeExcite, TrunkChannels = channels,
        };
        bool fineTune = options.Strategy == Strategy.FineTune;
        var modelConfig = new ModelConfig(ModelConfig.CurrentFormat, config.Name, backbone.WeightsId, input, dataset.Classes,
            head, options.Strategy.Name(), options.Fit, null, DateTime.UtcNow)
        {
            OnnxTrunk = backbone.Onnx?.Spec,
            Architecture = backbone.Architecture,
            FineTune = fineTune ? options.FineTuneOrDefault : null,
            Unfreeze = fineTune ? options.UnfreezeOrDefault : null,
            Augmentation = options.Strategy != Strategy.FeatureExtraction ? options.AugmentationOrDefault : null,
            FeatureBlock = options.FeatureBlock,
            Precision = options.Precision,
            Calibration = calibration,
        };
        return new TrainableClassifier(modelConfig, backbone, head.Build(), []).To(device);
    }

    /// <summary>The registry backbone of a run: pretrained, or untrained from scratch.</summary>
    static Backbone NewBackbone(TrainOptions options, AssetResolver resolver)
    {
        var config = BackboneRegistry.Get(options.BackboneOrDefault);
        int size = options.InputSize ?? config.InputSize;
        return options.Strategy == Strategy.Scratch
            ? Backbone.Create(config, new(size), config.Spec(size))
            : Backbone.LoadPretrained(config, resolver, inputSize: size, weightsFile: options.WeightsFile);
    }

    /// <summary>
    /// Feature extraction, and fine-tuning's phase 1: the frozen trunk runs once per image (bottleneck cache), the head
    /// trains on the features, and the validation and test images are scored on theirs.
    /// </summary>
    /// <param name="cached">Whether the bottleneck cache holds this trunk's features: the pretrained trunk's (not a grown model's trained one).</param>
    static async Task<TrainingResult> TrainHeadAsync(TrainableClassifier model, ImageDataset dataset, TrainOptions options, bool cached,
        float[]? classWeights, Callbacks callbacks, bool searchOnly, CancellationToken cancel)
    {
        var all = dataset.All.ToList();
        var features = await FeaturesAsync(model, all, cached, options.CacheRoot, mirror: false, callbacks, cancel);
        callbacks.Log?.Invoke(features.Stats.Computed == 0
            ? $"bottleneck cache: all {features.Stats.CacheHits} images cached, trunk skipped"
            : $"bottleneck features: {features.Stats.Computed} computed at {features.Stats.ImagesPerSecond:0} images/s, {features.Stats.CacheHits} from cache");
        WarnIfCacheFailed(features, callbacks);

        int trainCount = dataset.Train.Count, validationCount = dataset.Validation.Count;
        var train = features.ReadRows(0, trainCount);
        var validation = features.ReadRows(trainCount, validationCount);
        var test = features.ReadRows(trainCount + validationCount, dataset.Test.Count);
        CheckEveryClassWasRead(dataset, train.SelectMany(r => all[r].Labels).ToHashSet(), features.Skipped);
        var device = model.Device;
        var targets = Targets.For(dataset);
        using var trainX = features.Stack(train, device);
        using var trainY = targets.Of(train.Select(r => all[r]).ToList(), device);
        using var validationX = features.Stack(validation, device);
        using var validationY = targets.Of(validation.Select(r => all[r]).ToList(), device);
        bool validated = validation.Length > 0;
        var headOptions = options.Fit;
        LearningRateSearch? search = null;
        if (options.AutoLearningRate && options.Strategy == Strategy.FeatureExtraction)
        {
            search = HeadTrainer.FindLearningRate(model.Head, trainX, trainY, headOptions, cancel);
            callbacks.Log?.Invoke($"learning-rate range test ({search.Phase}): {search.Suggested:0.#####} suggested");
            headOptions = headOptions with { LearningRate = search.Suggested };
            if (searchOnly) return EmptyRun(model, dataset) with { LearningRateSearch = search };
        }
        var fit = HeadTrainer.Fit(model.Head, trainX, trainY, validated ? validationX : null, validated ? validationY : null, headOptions,
            callbacks.Epochs, cancel, classWeights);
        if (fit.Diverged is { } why) callbacks.Log?.Invoke($"warning: {why}");
        Measurement? testResult = null;
        if (test.Length > 0)
        {
            using var testX = features.Stack(test, device);
            testResult = Measure(model, all, test, Probabilities(model, testX));
        }
        var run = new TrainingResult(model, dataset, fit, null, null, features.Stats, features.Skipped, 0)
        {
            // The quick checks compare classes as single labels.
            AuditSummary = dataset.MultiLabel ? null : Audit.DataAudit.QuickSummary(dataset, features.ContentKeys, features.Rows, device),
            LearningRateSearch = search,
        };
        return Measured(run, validated ? Measure(model, all, validation, Probabilities(model, validationX)) : null, testResult);
    }

    /// <summary>
    /// Training can only go on with a readable image of every class: with none at all, or none of a class, training would
    /// "succeed" without it.
    /// </summary>
    static void CheckEveryClassWasRead(ImageDataset dataset, HashSet<int> readable, IReadOnlyList<SkippedImage> skipped)
    {
        if (readable.Count == 0)
            throw new GraftException($"No training image in {dataset.Root} could be read{FirstReason(skipped, _ => true)}.", "Replace the damaged images, or check the folder's permissions.");
        // A class without training images at all is a grown model's earlier class the data lacks (noted when the data was opened);
        // multi-label data cannot leave a class to validation or test images only.
        var listed = dataset.Train.SelectMany(i => i.Labels).ToHashSet();
        if (dataset.MultiLabel && Enumerable.Range(0, dataset.Classes.Count).FirstOrDefault(c => !listed.Contains(c), -1) is var unlisted and >= 0)
            throw new GraftException($"No training image in {dataset.Root} carries the class {dataset.Classes[unlisted]}; a class needs at least one training image.",
                "Label some training images with it, or leave the class out.");
        if (Enumerable.Range(0, dataset.Classes.Count).FirstOrDefault(c => listed.Contains(c) && !readable.Contains(c), -1) is not (var missing and >= 0)) return;
        var ofClass = dataset.Train.Where(i => i.Labels.Contains(missing)).Select(i => i.Path).ToHashSet();
        throw new GraftException($"None of the training images of {dataset.ClassFolder(missing)} could be read{FirstReason(skipped, s => ofClass.Contains(s.Path))}; a class needs at least one readable image.",
            "Replace the damaged images, or remove the class folder.");
    }

    /// <summary>
    /// Fine-tuning's phase 2 (the unfrozen top of the trunk with the head) or training from scratch (everything) on live,
    /// augmented images; then the validation and test images are scored through the trained trunk.
    /// </summary>
    static async Task<TrainingResult> TrainLiveAsync(TrainingResult run, TrainOptions options, float[]? classWeights, Callbacks callbacks,
        bool searchOnly, DateTime? deadline, CancellationToken cancel)
    {
        var (model, dataset) = (run.Model, run.Dataset);
        bool scratch = options.Strategy == Strategy.Scratch;
        var unreadable = run.Skipped.Select(s => s.Path).ToHashSet();
        List<LabeledImage> Readable(IReadOnlyList<LabeledImage> images) => images.Where(i => !unreadable.Contains(i.Path)).ToList();
        var (train, validation, test) = (Readable(dataset.Train), Readable(dataset.Validation), Readable(dataset.Test));
        var phase = scratch ? options.Fit : options.FineTuneOrDefault;
        var groups = TrainableGroups(model, options, scratch);
        callbacks.Log?.Invoke(scratch
            ? $"training {model.Config.Backbone} from scratch: {groups.Sum(g => g.Parameters.Sum(p => p.numel())):N0} parameters, live augmentation"
            : $"fine-tuning the {options.UnfreezeOrDefault.Describe()}{(options.UnfreezeOrDefault.All ? "" : " of the trunk")} with the head ({options.Recipe} recipe): {phase.Optimizer} lr {phase.LearningRate}, live augmentation");
        // What stays frozen up to a clean cut runs as inference (ONNX Runtime), outside autograd; the rest trains.
        var trunk = model.Backbone.Trunk;
        var frozenEnd = scratch ? null : Freezing.FrozenPrefixEnd(trunk);
        using var frozen = frozenEnd is null ? null : TrunkRunners.Create(trunk.Through(frozenEnd), model.Config.Input.Size, pooling: null);
        if (frozenEnd is not null) callbacks.Log?.Invoke($"layers up to {frozenEnd} are frozen: they run as inference ({(frozen is OnnxTrunkRunner ? "ONNX Runtime" : "libtorch")})");
        var network = new GraftedNetwork(frozenEnd is null ? trunk : trunk.From(frozenEnd), model.Config.Head.Pooling, model.Head); // shares (does not own) trunk and head
        var liveOptions = new LiveFitOptions(phase, options.AugmentationOrDefault, options.ScheduleOrDefault, classWeights,
            options.CheckpointPath, options.Resume, Fingerprint(dataset, options))
        {
            FrozenInput = frozen,
            Deadline = deadline,
            ClassFolders = Enumerable.Range(0, dataset.Classes.Count).Select(dataset.ClassFolder).ToList(),
            LearningRateOption = scratch ? "--lr" : "--ft-lr",
            Targets = Targets.For(dataset),
        };
        LearningRateSearch? search = null;
        if (options.AutoLearningRate)
        {
            search = await ImageTrainer.FindLearningRateAsync(scratch ? "scratch" : "fine-tune", network, groups, train, model.Config.Input, liveOptions, cancel);
            callbacks.Log?.Invoke($"learning-rate range test ({search.Phase}): {search.Suggested:0.#####} suggested");
            if (searchOnly) return run with { LearningRateSearch = search };
            liveOptions = liveOptions with { Fit = liveOptions.Fit with { LearningRate = search.Suggested } };
        }
        // Fine-tuning has to earn its place: the head on the pretrained trunk is kept unless phase 2 validates better (a tie keeps the head).
        var headOnly = scratch || Quality(run) is null ? null : Optimizers.Snapshot(network);
        try
        {
            var live = await ImageTrainer.FitAsync(network, groups, train, validation, model.Config.Input, liveOptions, callbacks, cancel);
            if (live.Diverged is { } why) callbacks.Log?.Invoke($"warning: {why}");
            if (live.PlannedEpochs is var (ran, asked))
                callbacks.Log?.Invoke($"the time budget ({AdviceRule.Duration(options.TimeBudget!.Value.TotalSeconds)}) left room for {ran} of the {asked} epochs: " +
                    "the learning-rate schedule was compressed to end there");

            foreach (var p in trunk.parameters()) p.requires_grad = false;
            model.ResetTrunkRunner();
            var validationResult = validation.Count > 0 ? await ScoreImagesAsync(model, validation, callbacks, cancel) : null;
            var (tuned, head) = (validationResult?.Quality, Quality(run));
            bool keepHead = headOnly is not null && tuned <= head;
            if (keepHead)
            {
                callbacks.Log?.Invoke($"fine-tuning did not validate above the head alone ({validationResult!.QualityName} {tuned:0.000}, head {head:0.000}): " +
                    "the model keeps the head on the pretrained trunk");
                network.load_state_dict(headOnly!);
                model.ResetTrunkRunner();
            }
            var testResult = keepHead || test.Count == 0 ? null : await ScoreImagesAsync(model, test, callbacks, cancel);
            if (options.CheckpointPath is { } done && File.Exists(done)) File.Delete(done); // the run is complete
            int offset = run.Fit.History.Count;
            var fit = new FitResult([.. run.Fit.History, .. live.History.Select(h => h with { Epoch = h.Epoch + offset })], keepHead ? run.Fit.BestEpoch : live.BestEpoch + offset,
                live.StoppedEarly, live.SamplesPerSecond) { Diverged = live.Diverged ?? run.Fit.Diverged, PlannedEpochs = live.PlannedEpochs };
            run = run with
            {
                Fit = fit, LearningRateSearch = search ?? run.LearningRateSearch,
                Skipped = [.. run.Skipped, .. live.Skipped.Where(s => !unreadable.Contains(s.Path))], FineTuningKept = headOnly is null ? null : !keepHead,
            };
            return keepHead ? run : Measured(run, validationResult, testResult);
        }
        finally { Optimizers.Dispose(headOnly); }
    }

    /// <summary>
    /// Confidence that is a probability, and "none of these" (<see cref="Trust"/>): fitted on the trained model's features of
    /// the run's images (from the bottleneck cache when the trunk is the frozen pretrained one), the validation and test
    /// results scored again with calibrated confidences. With too few validation images nothing is fitted and the run says so.
    /// </summary>
    static async Task<TrainingResult> FitTrustAsync(TrainingResult run, TrainOptions options, Callbacks callbacks, CancellationToken cancel)
    {
        var model = run.Model;
        var trust = Trust.TooFew(run.Validation?.Images ?? 0, options.Trust) is { } tooFew ? new TrustFit(null, null, null, null, tooFew)
            : Trust.Fit(model, run.Dataset, (await FeaturesAsync(model, run.Dataset.All.ToList(), options.UseCache && options.Strategy == Strategy.FeatureExtraction,
                options.CacheRoot, mirror: false, callbacks, cancel)).Rows, options.Trust, callbacks);
        if (trust.Note is { } note)
        {
            callbacks.Log?.Invoke($"note: {note}");
            return run;
        }
        model.ResetTrunkRunner(); // the calibrated classifier takes over trunk and head
        var calibrated = new TrainableClassifier(model.Config with { TemperatureScaling = trust.Temperature, OutOfDistribution = trust.Detector!.Config },
            model.Backbone, model.Head, [], trust.Detector);
        return run with { Model = calibrated, Validation = trust.Validation ?? run.Validation, Test = trust.Test ?? run.Test };
    }

    /// <summary>
    /// A multi-label model's decision thresholds: each label's of maximum F1 on the validation images (0.5 for a label none
    /// of them carries, and for all without validation images); the validation and test results are measured at them.
    /// </summary>
    static TrainingResult FitThresholds(TrainingResult run, Callbacks callbacks)
    {
        var thresholds = run.MultiLabelValidation?.MaxF1Thresholds() ?? Enumerable.Repeat(0.5, run.Dataset.Classes.Count).ToList();
        if (run.MultiLabelValidation is null) callbacks.Log?.Invoke("note: no validation images to choose the decision thresholds on: every label's is 0.5");
        var model = run.Model;
        model.ResetTrunkRunner(); // the classifier with thresholds takes over trunk and head
        return run with
        {
            Model = new TrainableClassifier(model.Config with { Thresholds = thresholds }, model.Backbone, model.Head, []),
            MultiLabelValidation = run.MultiLabelValidation?.At(thresholds),
            MultiLabelTest = run.MultiLabelTest?.At(thresholds),
        };
    }

    /// <summary>The trained classifier, with what its file records about the data: it takes over the run's trunk and head.</summary>
    static TrainingResult Finish(TrainingResult run, TrainOptions options, Stopwatch clock)
    {
        var (model, dataset) = (run.Model, run.Dataset);
        var unreadable = run.Skipped.Select(s => s.Path).ToHashSet();
        model.ResetTrunkRunner();
        var info = new DatasetInfo(Path.GetFullPath(dataset.Root), dataset.Layout, dataset.Train.Count(i => !unreadable.Contains(i.Path)),
            run.Validation?.Images ?? run.MultiLabelValidation?.Images ?? 0, run.Skipped.Count)
        {
            TestImages = run.Test?.Images ?? run.MultiLabelTest?.Images ?? 0, ValidationSplit = options.ValidationSplit, TestSplit = options.TestSplit, Seed = options.Fit.Seed,
            LabelsFile = dataset.LabelsFile is { } labels ? LabelFile.Relative(dataset.Root, labels) : null,
            TestFiles = dataset.Test.Select(i => EarlierRoles.Relative(dataset.Root, i.Path)).ToList(), GrewFrom = options.From,
        };
        var trained = new TrainableClassifier(model.Config with { Dataset = info, LearningRateSearch = run.LearningRateSearch }, model.Backbone, model.Head, run.Fit.History, model.Detector);
        return run with { Model = trained, Seconds = clock.Elapsed.TotalSeconds };
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
        groups.AddRange(blocks.Select(b => new ParameterGroup(b.Parameters, Math.Pow(options.DiscriminativeOrDefault, b.DepthFromTop + 1))));
        return groups;
    }

    /// <summary>Each label's positive weight for multi-label data: its negatives / positives among the training images (1 for a label none carries).</summary>
    internal static float[] PositiveWeights(IReadOnlyList<LabeledImage> train, int classes)
    {
        var counts = Enumerable.Range(0, classes).Select(c => train.Count(i => i.Labels.Contains(c))).ToArray();
        return counts.Select(n => n == 0 ? 1f : (float)(train.Count - n) / n).ToArray();
    }

    static float[] BalancedWeights(ImageDataset dataset)
    {
        var counts = Enumerable.Range(0, dataset.Classes.Count).Select(c => dataset.Train.Count(i => i.Label == c)).ToArray();
        return counts.Select(n => n == 0 ? 0f : (float)dataset.Train.Count / (dataset.Classes.Count * n)).ToArray();
    }

    /// <summary>
    /// Identifies a run for checkpoints: the images and every option that changes the result so far.
    /// Patience and the time budget may change on resume, and so may the epoch limit (to train longer) unless a learning-rate
    /// schedule spreads its curve over the epochs.
    /// </summary>
    static string Fingerprint(ImageDataset dataset, TrainOptions options)
    {
        bool epochsShapeTheRates = options.ScheduleOrDefault != LrSchedule.Constant;
        var relevant = options with
        {
            CheckpointPath = null, Resume = false, CacheRoot = null, UseCache = true, TimeBudget = null,
            Fit = options.Fit with { Epochs = epochsShapeTheRates ? options.Fit.Epochs : 0, Patience = 0 },
            FineTune = options.FineTuneOrDefault with { Epochs = epochsShapeTheRates ? options.FineTuneOrDefault.Epochs : 0, Patience = 0 },
        };
        var text = System.Text.Json.JsonSerializer.Serialize(relevant, TrainableClassifier.Json) + "|" +
                   string.Join("|", dataset.All.Select(i => $"{i.Path}:{string.Join(",", i.Labels)}"));
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..32];
    }

    /// <summary>
    /// Evaluates a model on DATA's validation folder, or on all of a plain class-folder set; with a label file, on its
    /// test (else val) rows, or on every row. Evaluating the model's own DATA again measures the images it held out.
    /// Uses the bottleneck cache when the model's trunk is the pretrained one.
    /// </summary>
    /// <param name="labelsFile">A label file naming DATA's images and labels (<see cref="TrainOptions.LabelsFile"/>); null:
    /// class folders, or the model's own label file when DATA is its own.</param>
    public static async Task<EvaluationRun> EvaluateAsync(TrainableClassifier model, string data, string? cacheRoot = null,
        Callbacks? callbacks = null, bool tta = false, string? labelsFile = null, CancellationToken cancel = default)
    {
        callbacks ??= Callbacks.None;
        if (model.Config.Head.MultiLabel)
            throw new GraftException($"The model is multi-label ({model.Classes.Count} independent labels): its evaluation has no single-label accuracy.",
                "Evaluate it with EvaluateMultiLabelAsync (mean average precision, per-label F1).");
        var (dataset, images, plain, rows, probabilities, clock) = await ScoreFolderAsync(model, data, cacheRoot, labelsFile, callbacks, cancel);
        EvaluationResult? withTta = null;
        if (tta)
        {
            bool pretrainedTrunk = model.Config.Strategy == Strategy.FeatureExtraction.Name();
            var mirrored = await FeaturesAsync(model, images, pretrainedTrunk, cacheRoot, mirror: true, callbacks, cancel);
            WarnIfCacheFailed(mirrored, callbacks);
            using var xm = mirrored.Stack(rows, model.Device);
            withTta = Evaluate(model, images, rows, Average(probabilities, Probabilities(model, xm)));
        }
        return new EvaluationRun(Evaluate(model, images, rows, probabilities), withTta, dataset, plain.Stats, plain.Skipped, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Evaluates a multi-label model on DATA as <see cref="EvaluateAsync"/> opens it (each image carrying the labels the data
    /// gives it), at the model's decision thresholds.
    /// </summary>
    public static async Task<MultiLabelEvaluationRun> EvaluateMultiLabelAsync(TrainableClassifier model, string data, string? cacheRoot = null,
        Callbacks? callbacks = null, string? labelsFile = null, CancellationToken cancel = default)
    {
        if (model.Config.Thresholds is not { } thresholds)
            throw new GraftException("The model is single-label: it has no per-label decision thresholds.", "Evaluate it with EvaluateAsync (accuracy).");
        var (dataset, images, plain, rows, probabilities, clock) = await ScoreFolderAsync(model, data, cacheRoot, labelsFile, callbacks ?? Callbacks.None, cancel);
        var result = MultiLabelResult.From(rows.Select(r => images[r].Path).ToArray(), probabilities, rows.Select(r => images[r].Labels).ToArray(), model.Classes, thresholds);
        return new MultiLabelEvaluationRun(result, dataset, plain.Stats, plain.Skipped, clock.Elapsed.TotalSeconds);
    }

    /// <summary>DATA's images to evaluate on, their features through the cache when the trunk is the pretrained one, and the model's probabilities of those that were read.</summary>
    static async Task<(ImageDataset Dataset, IReadOnlyList<LabeledImage> Images, ImageFeatures Features, int[] Rows, float[,] Probabilities, Stopwatch Clock)>
        ScoreFolderAsync(TrainableClassifier model, string data, string? cacheRoot, string? labelsFile, Callbacks callbacks, CancellationToken cancel)
    {
        Engine.TorchRuntime.EnsureInitialized();
        var clock = Stopwatch.StartNew();
        var dataset = ImageFolder.OpenForEvaluation(data, model.Classes, model.Config.Dataset, labelsFile, model.Config.Head.MultiLabel);
        var images = dataset.Validation;
        bool pretrainedTrunk = model.Config.Strategy == Strategy.FeatureExtraction.Name();
        var plain = await FeaturesAsync(model, images, pretrainedTrunk, cacheRoot, mirror: false, callbacks, cancel);
        WarnIfCacheFailed(plain, callbacks);
        var rows = plain.ReadRows(0, images.Count);
        if (rows.Length == 0)
            throw new GraftException($"None of the {images.Count} images in {dataset.ClassRoot} could be read{FirstReason(plain.Skipped, _ => true)}; there is nothing to evaluate.",
                "Replace the damaged images, or check the folder's permissions.");
        using var x = plain.Stack(rows, model.Device);
        return (dataset, images, plain, rows, Probabilities(model, x), clock);
    }

    /// <summary>Scores images with a model through its trunk (no cache: used when the trunk itself was trained).</summary>
    static async Task<Measurement> ScoreImagesAsync(TrainableClassifier model, IReadOnlyList<LabeledImage> images, Callbacks callbacks,
        CancellationToken cancel)
    {
        var features = await FeaturesAsync(model, images, useCache: false, null, mirror: false, callbacks, cancel);
        var rows = features.ReadRows(0, images.Count);
        using var x = features.Stack(rows, model.Device);
        return Measure(model, images, rows, Probabilities(model, x));
    }

    /// <summary>
    /// The model's pooled trunk features of the images (or of their mirror images), through the bottleneck cache under
    /// <paramref name="cacheRoot"/> when <paramref name="useCache"/>: the feature service, keyed by the model's trunk.
    /// </summary>
    static Task<ImageFeatures> FeaturesAsync(TrainableClassifier model, IReadOnlyList<LabeledImage> images, bool useCache, string? cacheRoot,
        bool mirror, Callbacks callbacks, CancellationToken cancel)
    {
        int channels = model.Config.Head.InputChannels;
        var cache = useCache ? new FeatureCache(cacheRoot ?? AssetResolver.DefaultCacheRoot(), model.Config.TrunkKey + (mirror ? "|mirror" : ""), channels) : null;
        return BottleneckFeatures.ExtractAsync(images.Select(i => i.Path).ToList(), model.Trunk, model.Config.Input, channels, cache,
            model.Config.Training.BatchSize, callbacks.Images, cancel, mirror);
    }

    /// <summary>The bottleneck cache is optional: when it could not be written the run went on without it, and says so.</summary>
    static void WarnIfCacheFailed(ImageFeatures features, Callbacks callbacks)
    {
        if (features.CacheWarning is { } why)
            callbacks.Log?.Invoke($"warning: the feature cache could not be written ({why}); features were computed without caching");
    }

    /// <summary>" (file: reason)" of the first skipped image that matches, for a one-line error.</summary>
    static string FirstReason(IReadOnlyList<SkippedImage> skipped, Func<SkippedImage, bool> which) =>
        skipped.FirstOrDefault(which) is { } s ? $" ({Path.GetFileName(s.Path)}: {GraftException.FirstLine(s.Reason)})" : "";

    static float[,] Probabilities(TrainableClassifier model, Tensor x) =>
        HeadTrainer.Score(model.Head, x, null, multiLabel: model.Config.Head.MultiLabel).Probabilities;

    /// <summary>A set of images measured as its model's task has it: single-label or multi-label.</summary>
    sealed record Measurement(EvaluationResult? Single, MultiLabelResult? Multi)
    {
        /// <summary>What fine-tuning must not lower: the accuracy, or the mean average precision (threshold-free).</summary>
        public double Quality => Single?.Accuracy ?? Multi!.MeanAveragePrecision;
        public string QualityName => Single is null ? "mAP" : "accuracy";
    }

    static Measurement Measure(TrainableClassifier model, IReadOnlyList<LabeledImage> images, int[] rows, float[,] probabilities) =>
        model.Config.Head.MultiLabel
            ? new(null, MultiLabelResult.From(rows.Select(r => images[r].Path).ToArray(), probabilities, rows.Select(r => images[r].Labels).ToArray(), model.Classes,
                model.Config.Thresholds ?? Enumerable.Repeat(0.5, model.Classes.Count).ToList()))
            : new(Evaluate(model, images, rows, probabilities), null);

    /// <summary>The run with its validation and test results (null: none) in the fields of its task.</summary>
    static TrainingResult Measured(TrainingResult run, Measurement? validation, Measurement? test) => run with
    {
        Validation = validation?.Single, Test = test?.Single, MultiLabelValidation = validation?.Multi, MultiLabelTest = test?.Multi,
    };

    /// <summary>The validation quality fine-tuning must match (<see cref="Measurement.Quality"/>); null without validation.</summary>
    static double? Quality(TrainingResult run) => run.Validation?.Accuracy ?? run.MultiLabelValidation?.MeanAveragePrecision;

    /// <summary>The evaluation of the images at <paramref name="rows"/> (those that were read), from their class probabilities.</summary>
    /// <remarks>The probabilities are the head's; the model's temperature scaling calibrates them (<see cref="Calibration.Evaluate"/>).</remarks>
    static EvaluationResult Evaluate(TrainableClassifier model, IReadOnlyList<LabeledImage> images, int[] rows, float[,] probabilities) =>
        Calibration.Evaluate(rows.Select(r => images[r].Path).ToArray(), probabilities, rows.Select(r => images[r].Label).ToArray(), model.Classes,
            model.Config.TemperatureScaling);

    static float[,] Average(float[,] a, float[,] b)
    {
        var result = new float[a.GetLength(0), a.GetLength(1)];
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < a.GetLength(1); j++) result[i, j] = (a[i, j] + b[i, j]) / 2;
        return result;
    }
}
