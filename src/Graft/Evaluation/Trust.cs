using Graft.Data;
using Graft.Heads;
using Graft.Models;
using Graft.Training;
using static TorchSharp.torch;

namespace Graft.Evaluation;

/// <summary>
/// What training adds so that a single prediction can be trusted: temperature scaling and the "none of these" detector,
/// both fitted on the validation images, and the validation and test results again with calibrated confidences.
/// </summary>
/// <param name="Note">Why nothing was fitted (too few validation images), or null.</param>
internal sealed record TrustFit(TemperatureScaling? Temperature, OodDetector? Detector, EvaluationResult? Validation, EvaluationResult? Test, string? Note);

/// <summary>How well a model's confidence and its "none of these" hold on its test images and on photos of other sets.</summary>
/// <param name="Calibration">The test images' calibration error before and after the model's temperature scaling.</param>
/// <param name="Scores">Per set of other photos, every score's separation of them from the test images.</param>
internal sealed record TrustMeasurement(CalibrationResult Calibration, int TestImages,
    IReadOnlyDictionary<string, IReadOnlyList<OodMeasurement>> Scores);

/// <summary>Fits and measures calibrated confidence and the out-of-distribution detector of a trained classifier.</summary>
internal static class Trust
{
    /// <summary>
    /// Temperature scaling on the validation images' probabilities; the <see cref="TrustOptions.Score"/> detector's
    /// statistics from the training images' features and its threshold from the validation images' scores. Nothing is
    /// fitted with fewer than <see cref="TrustOptions.MinValidationImages"/> readable validation images.
    /// </summary>
    /// <param name="rows">The head's input for each of <paramref name="dataset"/>'s images in <see cref="ImageDataset.All"/>'s order (null: unreadable).</param>
    public static TrustFit Fit(TrainableClassifier model, ImageDataset dataset, IReadOnlyList<float[]?> rows, TrustOptions options, Callbacks callbacks)
    {
        var features = new HeadInputs(rows);
        var trainSet = features.Take(dataset.Train);
        var valSet = features.Skip(dataset.Train.Count).Take(dataset.Validation);
        var testSet = features.Skip(dataset.Train.Count + dataset.Validation.Count).Take(dataset.Test);
        if (TooFew(trainSet.Files.Length == 0 ? 0 : valSet.Files.Length, options) is { } tooFew) return new TrustFit(null, null, null, null, tooFew);

        using var valLogits = Logits(model, valSet);
        var temperature = Calibration.Fit(Probabilities(valLogits), valSet.Labels);
        var detector = OutOfDistribution.Fit(options.Score, ChannelMeans(model, trainSet), trainSet.Labels, model.Classes.Count, options);
        OutOfDistribution.SetThreshold(detector, Scores(detector, valSet, valLogits, temperature));
        callbacks.Log?.Invoke($"calibration: temperature {temperature.Temperature:0.###} on {temperature.Images} validation images " +
            $"(expected calibration error {temperature.EceBefore:0.000} → {temperature.Ece:0.000}); unknown: {detector.Config.Score.ToString().ToLowerInvariant()} score above " +
            $"{detector.Config.Threshold:0.####} ({detector.Config.Acceptance:0.#%} of the validation images stay known)");
        EvaluationResult? Evaluate(FeatureSet set)
        {
            if (set.Files.Length == 0) return null;
            using var logits = Logits(model, set);
            return Calibration.Evaluate(set.Files, Probabilities(logits), set.Labels, model.Classes, temperature);
        }
        return new TrustFit(temperature, detector, Evaluate(valSet), Evaluate(testSet), null);
    }

    /// <summary>Why nothing is fitted on this many readable validation images, or null when they are enough.</summary>
    public static string? TooFew(int validationImages, TrustOptions options) => validationImages >= options.MinValidationImages ? null
        : $"{validationImages} readable validation images: confidence is not calibrated and every photo gets a class (both need {options.MinValidationImages})";

    /// <summary>
    /// Measures a trained model on <paramref name="dataset"/>'s split (as training made it) against other photos: the
    /// test images' calibration error, and for every score (statistics from the training images, threshold from the
    /// validation images) its AUROC, false acceptance and acceptance of each set of <paramref name="others"/> against the test images.
    /// </summary>
    /// <param name="cacheRoot">The bottleneck cache folder (null: the user cache).</param>
    public static async Task<TrustMeasurement> MeasureAsync(TrainableClassifier model, ImageDataset dataset,
        IReadOnlyDictionary<string, IReadOnlyList<string>> others, TrustOptions options, string? cacheRoot, Callbacks? callbacks = null, CancellationToken cancel = default)
    {
        callbacks ??= Callbacks.None;
        NotForMultiLabel.Check(model.Config.Head.MultiLabel, "Measuring calibration and out-of-distribution detection");
        var labelled = dataset.All.ToList();
        var outsideImages = others.SelectMany(o => o.Value.Select(f => new LabeledImage(f, 0))).ToList();
        var features = await HeadInputsAsync(model, [.. labelled, .. outsideImages], cacheRoot, callbacks, cancel);
        var trainSet = features.Take(dataset.Train);
        var valSet = features.Skip(dataset.Train.Count).Take(dataset.Validation);
        var testSet = features.Skip(dataset.Train.Count + dataset.Validation.Count).Take(dataset.Test);
        var temperature = model.Config.TemperatureScaling;
        using var testLogits = Logits(model, testSet);
        using var valLogits = Logits(model, valSet);
        var calibration = Calibration.Evaluate(testSet.Files, Probabilities(testLogits), testSet.Labels, model.Classes, temperature).Calibration!;

        var outside = new Dictionary<string, FeatureSet>();
        int offset = labelled.Count;
        foreach (var (name, files) in others)
        {
            outside[name] = features.Skip(offset).Take(files.Select(f => new LabeledImage(f, 0)).ToList());
            offset += files.Count;
        }
        var results = outside.Keys.ToDictionary(k => k, _ => new List<OodMeasurement>());
        var trainMeans = ChannelMeans(model, trainSet);
        foreach (var score in Enum.GetValues<OodScore>())
        {
            using var detector = OutOfDistribution.Fit(score, trainMeans, trainSet.Labels, model.Classes.Count, options);
            OutOfDistribution.SetThreshold(detector, Scores(detector, valSet, valLogits, temperature));
            var inside = Scores(detector, testSet, testLogits, temperature);
            foreach (var (name, set) in outside)
            {
                using var logits = Logits(model, set);
                results[name].Add(OutOfDistribution.Measure(detector.Config, inside, Scores(detector, set, logits, temperature)));
            }
        }
        return new TrustMeasurement(calibration, testSet.Files.Length, results.ToDictionary(r => r.Key, r => (IReadOnlyList<OodMeasurement>)r.Value));
    }

    /// <summary>Images, their labels and the head's input for each (the images whose features exist, in order).</summary>
    sealed record FeatureSet(string[] Files, int[] Labels, float[][] Rows);

    /// <summary>The head's input for every image (null where unreadable), with a way to cut it into the parts it was asked for.</summary>
    sealed class HeadInputs(IReadOnlyList<float[]?> rows, int offset = 0)
    {
        public HeadInputs Skip(int count) => new(rows, offset + count);

        public FeatureSet Take(IReadOnlyList<LabeledImage> images)
        {
            var keep = Enumerable.Range(0, images.Count).Where(i => rows[offset + i] is not null).ToArray();
            return new FeatureSet(keep.Select(i => images[i].Path).ToArray(), keep.Select(i => images[i].Label).ToArray(), keep.Select(i => rows[offset + i]!).ToArray());
        }
    }

    /// <summary>The head's input for each image through the model's trunk, through the bottleneck cache when the trunk is the frozen pretrained one.</summary>
    static async Task<HeadInputs> HeadInputsAsync(TrainableClassifier model, IReadOnlyList<LabeledImage> images, string? cacheRoot, Callbacks callbacks, CancellationToken cancel)
    {
        int channels = model.Config.Head.InputChannels;
        var cache = cacheRoot is null ? null : new FeatureCache(cacheRoot, model.Config.TrunkKey, channels);
        var extracted = await BottleneckFeatures.ExtractAsync(images.Select(i => i.Path).ToList(), model.Trunk, model.Config.Input, channels, cache,
            model.Config.Training.BatchSize, callbacks.Images, cancel);
        return new HeadInputs(extracted.Rows);
    }

    static Tensor Rows(FeatureSet set) => tensor(set.Rows.SelectMany(r => r).ToArray(), [set.Rows.Length, set.Rows.Length == 0 ? 0 : set.Rows[0].Length], device: CPU);

    /// <summary>The head's logits [N, outputs] for a set's features.</summary>
    static Tensor Logits(TrainableClassifier model, FeatureSet set)
    {
        using var x = Rows(set);
        using var _ = no_grad();
        model.Head.eval();
        return model.Head.forward(x);
    }

    static float[,] Probabilities(Tensor logits)
    {
        using var p = Objective.Probabilities(logits);
        int n = (int)p.shape[0], k = (int)p.shape[1];
        var values = p.data<float>().ToArray();
        var result = new float[n, k];
        Buffer.BlockCopy(values, 0, result, 0, values.Length * sizeof(float));
        return result;
    }

    /// <summary>The per-channel trunk features the distance scores compare.</summary>
    static float[][] ChannelMeans(TrainableClassifier model, FeatureSet set)
    {
        using var x = Rows(set);
        using var means = OodDetector.ChannelMeans(x, model.Config.Head.TrunkChannels > 0 ? model.Config.Head.TrunkChannels : model.Config.Head.InputChannels);
        int c = (int)means.shape[1];
        var values = means.contiguous().data<float>().ToArray();
        return Enumerable.Range(0, set.Rows.Length).Select(i => values.AsSpan(i * c, c).ToArray()).ToArray();
    }

    static double[] Scores(OodDetector detector, FeatureSet set, Tensor logits, TemperatureScaling? temperature)
    {
        if (set.Files.Length == 0) return [];
        using var x = Rows(set);
        using var scores = detector.Score(x, logits, temperature);
        return scores.data<float>().ToArray().Select(s => (double)s).ToArray();
    }
}
