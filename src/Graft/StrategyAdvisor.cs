using System.Diagnostics;
using Graft.Backbones;
using Graft.Data;
using Graft.Evaluation;
using Graft.Weights;
using Graft.Imaging;
using Graft.Training;
using Graft.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace Graft;

/// <summary>
/// Which strategy fits a dataset, decided from measurements on its own training and validation images (never its
/// test images): feature extraction on the top block and on the backbone's earlier, more generic block, each
/// estimated by k-fold out-of-fold accuracy of the head `graft train` trains, on every image (cached features make
/// that cheap); and fine-tuning, estimated by a short probe: fine-tuning and feature extraction trained on the same
/// capped subset and compared on the same held-out images, and where the run trains on many more images, on half that
/// subset too, fine-tuning's learning curve followed to the run's size. Plain feature extraction wins unless another strategy
/// beats it beyond the noise (<see cref="AdviceRule"/>). All its sampling uses <see cref="Seed"/>, not the run's
/// seed, so the same data gets the same advice.
/// </summary>
public static class StrategyAdvisor
{
    /// <summary>The advisor's own seed (folds, subsets, training): advice is a function of the data alone.</summary>
    public const int Seed = 1009;
    const int Folds = 5;
    /// <summary>
    /// The fine-tuning probe's size: it dominates the advisor's time, and these caps keep that time bounded whatever
    /// the data's size (`graft bench --advisor` measures it: docs/benchmarks.md).
    /// </summary>
    const int HoldoutCap = 400, ProbeCap = 500, ProbeEpochs = 4;

    /// <summary>Advises on DATA as `graft train` would open it with <paramref name="options"/> (its test images, if any, left out).</summary>
    public static Task<Advice> AdviseAsync(string data, string backbone, AssetResolver? resolver = null, TrainOptions? options = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        options = (options ?? new TrainOptions()) with { Backbone = backbone };
        var dataset = ImageFolder.OpenForTraining(data, options.ValidationSplit, options.Fit.Seed, options.TestSplit, options.LabelsFile, options.MultiLabel);
        return AdviseAsync(dataset, options, resolver, callbacks, cancel);
    }

    /// <summary>
    /// Advises on the training and validation images of <paramref name="dataset"/> for a `graft train` with
    /// <paramref name="options"/> (its head, epochs, backbone, cache), whose strategy fields are ignored.
    /// </summary>
    public static async Task<Advice> AdviseAsync(ImageDataset dataset, TrainOptions options, AssetResolver? resolver = null,
        Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        var started = Stopwatch.StartNew();
        var device = Engine.TorchDevices.Resolve(options.Device);
        resolver ??= AssetResolver.Default;
        callbacks ??= Callbacks.None;
        // An ONNX trunk has no earlier block to take and no weights to fine-tune: feature extraction is all there is to measure.
        var config = options.OnnxBackbone ? null : BackboneRegistry.Get(options.BackboneOrDefault);
        // The split into training and validation may follow the run's seed; the pool, in path order, does not.
        var pool = dataset.Train.Concat(dataset.Validation).OrderBy(i => i.Path, StringComparer.Ordinal).ToList();

        var top = await FeaturesAsync(pool, options, null, resolver, callbacks, cancel);
        var earlier = config?.GenericFeatureBlock is { } block ? await FeaturesAsync(pool, options, block, resolver, callbacks, cancel) : null;
        var (readable, perClass) = Measurable(dataset, pool, top, earlier);
        var images = readable.Select(i => pool[i]).ToList();
        var readablePaths = images.Select(i => i.Path).ToHashSet();
        int trainImages = dataset.Train.Count(i => readablePaths.Contains(i.Path)); // what `graft train` would train on

        callbacks.Detail?.Invoke($"{Folds}-fold head probes on {images.Count} images...");
        var clock = Stopwatch.StartNew();
        var topProbe = OutOfFold(readable.Select(i => top.Rows[i]!).ToArray(), images, dataset, options, device);
        var plain = new StrategyEstimate(Strategy.FeatureExtraction, null, null, topProbe.Accuracy, topProbe.Interval,
            topProbe.SecondsFor(trainImages), null);
        var estimates = new List<StrategyEstimate> { plain };
        string measure = Measure(dataset);
        var reasons = new List<string>
        {
            $"{images.Count} training and validation images in {dataset.Classes.Count} classes ({perClass.Min()}-{perClass.Max()} per class)" +
            (perClass.Min() < 0.5 * perClass.Max() ? $"; imbalanced (smallest/largest {(double)perClass.Min() / perClass.Max():0.00}): consider --class-weight balanced." : "."),
            $"Feature extraction from the top block ({config?.FeatureLayer ?? $"{Path.GetFileName(options.Backbone)}'s output"}) scored{measure} {plain.Interval.Describe(plain.Accuracy)} out of fold ({Folds}-fold, every image).",
        };

        if (earlier is not null)
        {
            var probe = OutOfFold(readable.Select(i => earlier.Rows[i]!).ToArray(), images, dataset, options, device);
            var gain = Paired(topProbe.Correct, probe.Correct);
            estimates.Add(new StrategyEstimate(Strategy.FeatureExtraction, config!.GenericFeatureBlock, null, probe.Accuracy, probe.Interval,
                probe.SecondsFor(trainImages), gain));
            reasons.Add($"Features from the earlier block {config.GenericFeatureBlock} scored{measure} {probe.Interval.Describe(probe.Accuracy)}: {gain.Describe()} against the top block on the same images.");
        }

        if (config is null) reasons.Add("An ONNX trunk is not fine-tuned: an ONNX graph has no trainable weights in Graft.");
        else
        {
            callbacks.Detail?.Invoke($"head probes: {clock.Elapsed.TotalSeconds:0.0} s; fine-tuning probe...");
            clock.Restart();
            var (fineTune, probeReason) = await FineTuneProbeAsync(dataset, images, options, plain, topProbe.Correct, trainImages, topProbe.SecondsFor(trainImages), resolver, callbacks, cancel);
            callbacks.Detail?.Invoke($"fine-tuning probe: {clock.Elapsed.TotalSeconds:0.0} s");
            estimates.Add(fineTune);
            reasons.Add(probeReason);
        }

        var (chosen, why) = AdviceRule.Decide(estimates, options.TimeBudget is { } budget ? (budget - started.Elapsed).TotalSeconds : null);
        reasons.Add(why);
        var skipped = top.Skipped.Concat(earlier?.Skipped ?? []).DistinctBy(s => s.Path).OrderBy(s => s.Path, StringComparer.Ordinal).ToList();
        return new Advice(chosen, estimates, reasons) { Skipped = skipped, Measure = Scored(dataset) };
    }

    /// <summary>
    /// The pool's images that every feature set could read (in pool order), and how many of each class: with fewer than 2
    /// of a class, the advisor cannot measure how well it is learned.
    /// </summary>
    static (int[] Rows, int[] PerClass) Measurable(ImageDataset dataset, IReadOnlyList<LabeledImage> pool, ImageFeatures top, ImageFeatures? earlier)
    {
        var rows = Enumerable.Range(0, pool.Count).Where(i => top.Rows[i] is not null && (earlier is null || earlier.Rows[i] is not null)).ToArray();
        if (rows.Length == 0)
            throw new GraftException($"None of the {pool.Count} training and validation images in {dataset.Root} could be read: there is nothing to measure.",
                "Replace the damaged images, or check the folder's permissions.");
        var perClass = Enumerable.Range(0, dataset.Classes.Count).Select(c => rows.Count(i => pool[i].Labels.Contains(c))).ToArray();
        if (perClass.Min() < 2)
            throw new GraftException($"{dataset.ClassFolder(Array.IndexOf(perClass, perClass.Min()))} has fewer than 2 readable images: the advisor cannot measure how well it is learned.",
                "Add photos (20 or more per class).");
        return (rows, perClass);
    }

    static async Task<ImageFeatures> FeaturesAsync(IReadOnlyList<LabeledImage> images, TrainOptions options, string? block, AssetResolver resolver,
        Callbacks callbacks, CancellationToken cancel)
    {
        var source = new FeatureSource(options.BackboneOrDefault)
        {
            FeatureBlock = block, WeightsFile = options.WeightsFile, InputSize = options.InputSize, Onnx = options.Onnx, Pooling = options.PoolingOrDefault,
            Resize = options.Resize, CacheRoot = options.CacheRoot, UseCache = options.UseCache, BatchSize = options.Fit.BatchSize, Device = options.Device,
        };
        var features = await BottleneckFeatures.ExtractAsync(images.Select(i => i.Path).ToList(), source, resolver, callbacks.Images, cancel);
        var line = $"features of {block ?? "the top block"}: {features.Stats.Computed} computed, {features.Stats.CacheHits} from the bottleneck cache, {features.Stats.Seconds:0.0} s";
        if (features.CacheWarning is { } why) callbacks.Log?.Invoke($"{line} (the cache could not be written: {why})"); // a warning: always said
        else callbacks.Detail?.Invoke(line);
        return features;
    }

    /// <summary>Out-of-fold correctness of the head `graft train` would train, and the seconds one fit took on how many rows.</summary>
    sealed record HeadProbe(bool[] Correct, double FitSeconds, int FitRows)
    {
        public double Accuracy => Correct.Count(c => c) / (double)Correct.Length;
        public Interval Interval => Interval.Wilson(Correct.Count(c => c), Correct.Length);
        /// <summary>Head training on <paramref name="rows"/> images: epochs cost in proportion to the rows.</summary>
        public double SecondsFor(int rows) => FitSeconds * rows / Math.Max(1, FitRows);
    }

    /// <summary>
    /// Stratified k-fold: each fold is predicted by a head trained on the others as `graft train` trains it (its head,
    /// optimizer and epochs, early stopping on a stratified fifth of the training folds). Multi-label data (stratified on
    /// the first label): an image is right when the labels above the thresholds of maximum F1 on the early-stopping part
    /// are exactly its labels.
    /// </summary>
    static HeadProbe OutOfFold(float[][] x, IReadOnlyList<LabeledImage> images, ImageDataset dataset, TrainOptions options, Device device)
    {
        var y = images.Select(i => i.Label).ToArray();
        int classes = dataset.Classes.Count;
        var targets = Targets.For(dataset);
        int n = y.Length, channels = x[0].Length, folds = Math.Min(Folds, Enumerable.Range(0, classes).Min(c => images.Count(i => i.Labels.Contains(c))));
        var fold = ImageFolder.StratifiedFolds(y, folds, Seed);
        var correct = new bool[n];
        var clock = Stopwatch.StartNew();
        int rows = 0;
        for (int f = 0; f < folds; f++)
        {
            var held = Enumerable.Range(0, n).Where(i => fold[i] == f).ToArray();
            // graft train's stratified split, over row numbers standing in for paths.
            var rest = Enumerable.Range(0, n).Where(i => fold[i] != f).Select(i => images[i] with { Path = i.ToString("D9") }).ToList();
            var (train, stop) = ImageFolder.StratifiedSplit(rest, 0.2, Seed + f);
            var trainIdx = train.Select(i => int.Parse(i.Path)).ToArray();
            var stopIdx = stop.Select(i => int.Parse(i.Path)).ToArray();
            rows += trainIdx.Length;
            using var scope = NewDisposeScope();
            manual_seed(Seed + f);
            using var head = new HeadConfig(channels, classes, options.HiddenOrDefault, options.DropoutOrDefault, options.BatchNorm, options.PoolingOrDefault)
                { Binary = options.Binary, MultiLabel = dataset.MultiLabel }.Build().to(device); // initialized on the host, as on every device
            var weights = !options.BalancedClassWeights ? null : dataset.MultiLabel ? Learner.PositiveWeights(train, classes)
                : Enumerable.Range(0, classes).Select(c => (float)trainIdx.Length / (classes * Math.Max(1, trainIdx.Count(i => y[i] == c)))).ToArray();
            HeadTrainer.Fit(head, ImageFeatures.Stack(x, trainIdx, channels, device), targets.Of(train, device),
                ImageFeatures.Stack(x, stopIdx, channels, device), targets.Of(stop, device), options.Fit with { Seed = Seed + f }, classWeights: weights);
            var probabilities = HeadTrainer.Score(head, ImageFeatures.Stack(x, held, channels, device), null, multiLabel: dataset.MultiLabel).Probabilities;
            if (dataset.MultiLabel)
            {
                MultiLabelResult Judge(int[] rows, float[,] p, IReadOnlyList<double>? thresholds) => MultiLabelResult.From(rows.Select(i => i.ToString()).ToList(), p,
                    rows.Select(i => images[i].Labels).ToList(), dataset.Classes, thresholds ?? Enumerable.Repeat(0.5, classes).ToList());
                var chosen = Judge(stopIdx, HeadTrainer.Score(head, ImageFeatures.Stack(x, stopIdx, channels, device), null, multiLabel: true).Probabilities, null).MaxF1Thresholds();
                var judged = Judge(held, probabilities, chosen);
                for (int k = 0; k < held.Length; k++) correct[held[k]] = judged.Items[k].ExactMatch;
            }
            else
                for (int k = 0; k < held.Length; k++) correct[held[k]] = ArgMax(probabilities, k) == y[held[k]];
        }
        return new HeadProbe(correct, clock.Elapsed.TotalSeconds / folds, rows / folds);
    }

    /// <summary>
    /// Fine-tuning against feature extraction on the same stratified subset (capped for time), both measured on the
    /// same held-out images. Where the run trains on many more images than the subset, both are also trained on half of
    /// it, and fine-tuning's learning curve is followed to the run's size (<see cref="Curves"/>): its gain usually grows
    /// with the images, which a single small probe cannot see. The estimate adds the gain to the full set's
    /// feature-extraction accuracy.
    /// </summary>
    /// <param name="extraction">Plain feature extraction's out-of-fold result on each of <paramref name="images"/>: right or not.</param>
    static async Task<(StrategyEstimate Estimate, string Reason)> FineTuneProbeAsync(ImageDataset dataset, IReadOnlyList<LabeledImage> images,
        TrainOptions options, StrategyEstimate plain, bool[] extraction, int trainImages, double headSeconds, AssetResolver resolver, Callbacks callbacks, CancellationToken cancel)
    {
        var (rest, holdout) = ImageFolder.StratifiedSplit(images, Math.Min(1 / 3.0, HoldoutCap / (double)images.Count), Seed);
        var subset = rest.Count <= ProbeCap ? rest : ImageFolder.StratifiedSplit(rest, ProbeCap / (double)rest.Count, Seed).Validation;
        var unfreeze = options.UnfreezeOrDefault;
        var common = options with
        {
            FeatureBlock = null, CheckpointPath = null, Resume = false, TimeBudget = null,
            Fit = options.Fit with { Seed = Seed }, FineTune = options.FineTuneOrDefault with { Seed = Seed, Epochs = Math.Min(options.FineTuneOrDefault.Epochs, ProbeEpochs) },
        };
        var large = await ProbeAsync(dataset, subset, holdout, common, unfreeze, resolver, callbacks, cancel);
        var gain = Paired(large.Extraction, large.FineTuning);
        var small = trainImages >= CurveRatio * large.TrainImages
            ? await ProbeAsync(dataset, ImageFolder.StratifiedSplit(subset, 0.5, Seed).Validation, holdout, common, unfreeze, resolver, callbacks, cancel)
            : null;
        StrategyGain estimated = small is null ? gain : Curves(small, large, trainImages, extraction, gain);
        double seconds = headSeconds + options.FineTuneOrDefault.Epochs * trainImages * large.SecondsPerImageEpoch;
        var interval = new Interval(Math.Clamp(plain.Interval.Low + estimated.Interval.Low, 0, 1), Math.Clamp(plain.Interval.High + estimated.Interval.High, 0, 1));
        var estimate = new StrategyEstimate(Strategy.FineTune, null, unfreeze, Math.Clamp(plain.Accuracy + estimated.Value, 0, 1), interval, seconds, estimated);
        string reason = $"Fine-tuning the {unfreeze.Describe()}, probed for {common.FineTune.Epochs} epochs on {large.TrainImages} training images and measured on {gain.Images} others: " +
            $"{large.FineTuningAccuracy:0.000}{Measure(dataset)} against {large.ExtractionAccuracy:0.000} for feature extraction on the same subset, {gain.Describe()}. " +
            (small is null
                ? $"The run trains on about as many images, so the estimate adds this gain to feature extraction's {Scored(dataset)}."
                : $"On {small.TrainImages} training images: {small.FineTuningAccuracy:0.000} against {small.ExtractionAccuracy:0.000}. Fine-tuning's learning curve followed to the run's " +
                  $"{trainImages} training images, against feature extraction's {Scored(dataset)} out of fold: {estimated.Describe()}.");
        return (estimate, reason);
    }

    /// <summary>
    /// Past what the probes measured, a learning curve is followed this far at most: the error may halve, no faster,
    /// each time the images double. A steeper fall seen between two small probes is mostly noise.
    /// </summary>
    const double MaxCurveExponent = 1.0;
    /// <summary>The run must train on this many times the larger probe's images before the curves are followed (closer, the larger probe stands for the run).</summary>
    const double CurveRatio = 1.5;
    const int Resamples = 2000;

    /// <summary>One probe size: feature extraction and fine-tuning trained on the same subset, each one's correctness on the held-out images.</summary>
    internal sealed record Probe(int TrainImages, bool[] Extraction, bool[] FineTuning, double SecondsPerImageEpoch)
    {
        public double ExtractionAccuracy => Extraction.Count(c => c) / (double)Extraction.Length;
        public double FineTuningAccuracy => FineTuning.Count(c => c) / (double)FineTuning.Length;
    }

    static async Task<Probe> ProbeAsync(ImageDataset dataset, IReadOnlyList<LabeledImage> subset, IReadOnlyList<LabeledImage> holdout, TrainOptions common,
        UnfreezeSpec unfreeze, AssetResolver resolver, Callbacks callbacks, CancellationToken cancel)
    {
        var (train, validation) = ImageFolder.StratifiedSplit(subset, 0.2, Seed);
        var probe = new ImageDataset(dataset.Root, dataset.Classes, train, validation, "the advisor's fine-tuning probe")
            { Test = holdout, ClassRoot = dataset.ClassRoot, ClassFolderNames = dataset.ClassFolderNames, MultiLabel = dataset.MultiLabel };
        var quiet = callbacks with { Log = null };
        var extraction = await Learner.TrainAsync(probe, common with { Strategy = Strategy.FeatureExtraction, Unfreeze = null, Augmentation = null }, resolver, quiet, cancel);
        var fineTuning = await Learner.TrainAsync(probe, common with { Strategy = Strategy.FineTune, Unfreeze = unfreeze }, resolver, quiet, cancel);
        extraction.Model.Dispose();
        fineTuning.Model.Dispose();
        // Images either could not read are left out of both: the comparison is on the same images.
        static Dictionary<string, bool> Correct(TrainingResult result) => result.MultiLabelTest is { } multi
            ? multi.Items.ToDictionary(i => i.File, i => i.ExactMatch) : result.Test!.Items.ToDictionary(i => i.File, i => i.Correct);
        var before = Correct(extraction);
        var after = Correct(fineTuning);
        var files = holdout.Select(i => i.Path).Where(f => before.ContainsKey(f) && after.ContainsKey(f)).ToList();
        // Seconds per image and epoch of the live phase (the records after the head's), validation included.
        var live = fineTuning.Fit.History.Skip(extraction.Fit.History.Count).ToList();
        return new Probe(train.Count, [.. files.Select(f => before[f])], [.. files.Select(f => after[f])],
            live.Sum(r => r.Seconds) / Math.Max(1, live.Count * train.Count));
    }

    /// <summary>
    /// Fine-tuning's gain at <paramref name="images"/> training images: its error on the held-out images at two probe
    /// sizes followed along a power law (error ∝ images^-b, b at most <see cref="MaxCurveExponent"/>; no fall, no
    /// extrapolation), against feature extraction's out-of-fold accuracy (<paramref name="extraction"/>, each image right
    /// or not), measured at about that size: feature extraction's curve flattens early, and it need not be guessed. The
    /// interval resamples the held-out images and the out-of-fold ones (seeded: the same data gets the same interval).
    /// </summary>
    internal static ExtrapolatedGain Curves(Probe small, Probe large, int images, bool[] extraction, PairedGain measured)
    {
        int n = large.FineTuning.Length, m = extraction.Length;
        double Gain(IReadOnlyList<int> held, IReadOnlyList<int> folds)
        {
            double Error(bool[] correct, IReadOnlyList<int> rows) => 1 - rows.Count(r => correct[r]) / (double)rows.Count;
            double fineTuning = 1 - FollowCurve(Error(small.FineTuning, held), Error(large.FineTuning, held), small.TrainImages, large.TrainImages, images);
            return fineTuning - (1 - Error(extraction, folds));
        }
        var rng = new Random(Seed);
        int[] Draw(int count) => [.. Enumerable.Range(0, count).Select(_ => rng.Next(count))];
        var resampled = Enumerable.Range(0, Resamples).Select(_ => Gain(Draw(n), Draw(m))).Order().ToArray();
        return new ExtrapolatedGain(Gain([.. Enumerable.Range(0, n)], [.. Enumerable.Range(0, m)]),
            new Interval(resampled[(int)(0.025 * Resamples)], resampled[(int)(0.975 * Resamples) - 1]), measured, small.TrainImages, large.TrainImages, images);
    }

    /// <summary>The error at <paramref name="n"/> images on the power law through (n1, e1) and (n2, e2), its exponent held to [0, <see cref="MaxCurveExponent"/>].</summary>
    internal static double FollowCurve(double e1, double e2, double n1, double n2, double n)
    {
        if (e2 <= 0) return 0;
        double b = e1 > e2 ? Math.Min(MaxCurveExponent, Math.Log(e1 / e2) / Math.Log(n2 / n1)) : 0;
        return e2 * Math.Pow(n / n2, -b);
    }

    /// <summary>What the reasons call a score: nothing (accuracy, as always), or for multi-label data " exact match" (an image is right when its predicted labels are exactly its labels).</summary>
    static string Measure(ImageDataset dataset) => dataset.MultiLabel ? " exact match" : "";

    /// <summary>The measure's name: accuracy, or exact match.</summary>
    static string Scored(ImageDataset dataset) => dataset.MultiLabel ? "exact match" : "accuracy";

    static int ArgMax(float[,] p, int row)
    {
        int best = 0;
        for (int j = 1; j < p.GetLength(1); j++) if (p[row, j] > p[row, best]) best = j;
        return best;
    }

    /// <summary>How <paramref name="candidate"/> did against <paramref name="baseline"/>, image by image.</summary>
    static PairedGain Paired(bool[] baseline, bool[] candidate) =>
        new(Enumerable.Range(0, baseline.Length).Count(i => candidate[i] && !baseline[i]),
            Enumerable.Range(0, baseline.Length).Count(i => !candidate[i] && baseline[i]), baseline.Length);
}
