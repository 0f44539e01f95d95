using Graft.Backbones;
using Graft.Data;
using Graft.Models;
using Graft.Weights;
using SkiaSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Graft.Training;

/// <summary>The measurements behind a recommendation.</summary>
public sealed record DatasetFacts(
    int Classes,
    int Images,
    int SmallestClass,
    int LargestClass,
    int MedianWidth,
    int MedianHeight,
    double ImageNetConfidence,
    IReadOnlyList<string> CommonImageNetLabels,
    double TopProbeAccuracy,
    double EarlierProbeAccuracy,
    string EarlierBlock,
    int SampledImages)
{
    public double Balance => LargestClass == 0 ? 0 : (double)SmallestClass / LargestClass;
}

/// <summary>A recommendation: one of the four classic cases, the options that implement it, and why.</summary>
public sealed record Advice(string Case, string Strategy, UnfreezeSpec? Unfreeze, string? FeatureBlock, IReadOnlyList<string> Reasons, DatasetFacts Facts)
{
    /// <summary>The advice as graft train arguments, e.g. "--strategy fine-tune --unfreeze 2".</summary>
    public string Arguments => $"--strategy {Strategy}" + (Unfreeze is { } u ? $" {u.ToArguments()}" : "") + (FeatureBlock is { } b ? $" --features-from {b}" : "");
}

/// <summary>
/// Which transfer-learning strategy fits a dataset (CS231n's four cases): measures its size and balance, and
/// how close it is to ImageNet — how confidently the pretrained classifier recognises ImageNet classes in it,
/// and whether a cross-validated linear probe does better on the trunk's last block or on an earlier one.
/// </summary>
public static class StrategyAdvisor
{
    /// <summary>Below this many images per class a dataset counts as small (the Keras blog's "very little data" is 1000).</summary>
    public const int SmallPerClass = 1000;

    public static async Task<Advice> AdviseAsync(string data, string backboneName, AssetResolver resolver, int sample = 300, int seed = 42,
        Callbacks? callbacks = null, CancellationToken cancel = default, string? weightsFile = null, int? inputSize = null)
    {
        Engine.TorchRuntime.EnsureInitialized();
        callbacks ??= Callbacks.None;
        var dataset = ImageFolder.OpenForTraining(data, 0, seed);
        var images = dataset.Train;
        var perClass = Enumerable.Range(0, dataset.Classes.Count).Select(c => images.Count(i => i.Label == c)).ToArray();
        var (width, height) = MedianSize(images.Select(i => i.Path).Take(500).ToList());

        // A stratified sample keeps the probe honest and the measurement quick.
        var rng = new Random(seed);
        var picked = images.GroupBy(i => i.Label)
            .SelectMany(g => g.OrderBy(_ => rng.Next()).Take(Math.Max(2, sample / dataset.Classes.Count))).ToList();
        using var model = ImageClassifier.PretrainedImageNet(backboneName, resolver, weightsFile, inputSize);
        var spec = model.Config.Input with { Resize = ResizeMode.CenterCrop };
        string earlierBlock = BackboneRegistry.Get(backboneName).GenericFeatureBlock
            ?? throw new GraftException($"{backboneName} names no earlier feature block to compare.", "Advise with a pretrained backbone (graft models).");
        var (top, earlier, y, confidences, labels) = await ProbeAsync(model, picked, spec, earlierBlock, callbacks, cancel);
        if (y.Length == 0)
            throw new GraftException($"None of the {picked.Count} sampled images in {data} could be read: there is nothing to measure.",
                "Replace the damaged images, or check the folder's permissions.");

        double topAccuracy = CrossValidatedProbe(top, y, dataset.Classes.Count, seed);
        double earlierAccuracy = CrossValidatedProbe(earlier, y, dataset.Classes.Count, seed);
        var common = labels.GroupBy(l => l).OrderByDescending(g => g.Count()).Take(5).Select(g => $"{g.Key} ({g.Count()})").ToList();
        var facts = new DatasetFacts(dataset.Classes.Count, images.Count, perClass.Min(), perClass.Max(), width, height,
            confidences.Average(), common, topAccuracy, earlierAccuracy, earlierBlock, y.Length);
        return Decide(facts);
    }

    /// <summary>The four cases, from the measured facts.</summary>
    public static Advice Decide(DatasetFacts f)
    {
        bool small = f.SmallestClass < SmallPerClass;
        // Similar to ImageNet: the top block's features separate the classes at least as well as earlier ones
        // (for distant domains, generic earlier features transfer better), and ImageNet classes are recognised.
        bool similar = f.TopProbeAccuracy >= f.EarlierProbeAccuracy - 0.01 && f.ImageNetConfidence >= 0.25;
        var reasons = new List<string>
        {
            $"{f.Images} training images in {f.Classes} classes, {f.SmallestClass}-{f.LargestClass} per class: " +
            (small ? $"small (under {SmallPerClass} per class)" : $"large ({SmallPerClass} or more per class)") +
            (f.Balance < 0.5 ? $"; imbalanced (smallest/largest {f.Balance:0.00}): consider --class-weight balanced" : ""),
            $"the pretrained classifier is {f.ImageNetConfidence:0.00} confident on average (most common: {string.Join(", ", f.CommonImageNetLabels)})",
            $"5-fold linear probe on {f.SampledImages} images: {f.TopProbeAccuracy:0.000} on the last block's features, " +
            $"{f.EarlierProbeAccuracy:0.000} on {f.EarlierBlock}'s: " + (similar ? "similar to ImageNet" : "different from ImageNet"),
        };
        return (small, similar) switch
        {
            (true, true) => new Advice("small and similar", Strategies.FeatureExtraction, null, null,
                [.. reasons, "→ train a linear head on the top features (feature extraction): fine-tuning would overfit"], f),
            (true, false) => new Advice("small and different", Strategies.FeatureExtraction, null, f.EarlierBlock,
                [.. reasons, $"→ train a head on earlier, more generic features ({f.EarlierBlock}): the top block is ImageNet-specific"], f),
            (false, true) => new Advice("large and similar", Strategies.FineTune, new UnfreezeSpec(TopBlocks: 2), null,
                [.. reasons, "→ fine-tune the top blocks with the head: enough data to adapt them without overfitting"], f),
            _ => new Advice("large and different", Strategies.FineTune, new UnfreezeSpec(FreezeFirstLayers: 0), null,
                [.. reasons, "→ fine-tune the whole trunk: the data is far from ImageNet and there is enough of it"], f),
        };
    }

    /// <summary>One pass per image: pooled features of the earlier block and of the last one, the image's class, and the ImageNet top-1 (unreadable images left out).</summary>
    static async Task<(float[][] Top, float[][] Earlier, int[] Classes, List<double> Confidence, List<string> Labels)> ProbeAsync(
        ImageClassifier model, IReadOnlyList<LabeledImage> images, ImageSpec spec, string earlierBlock, Callbacks callbacks, CancellationToken cancel)
    {
        var top = new List<float[]>();
        var earlier = new List<float[]>();
        var confidence = new List<double>();
        var labels = new List<string>();
        var classes = new List<int>();
        var network = model.Backbone.Network;
        string earlierLayer = network.Nodes.LastOrDefault(n => n.Block == earlierBlock)?.Name
            ?? throw new InvalidOperationException($"{earlierBlock} is not a block of {model.Config.Backbone}");
        string featureLayer = model.Backbone.Config.FeatureLayer;
        int done = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await foreach (var batch in BatchPipeline.Batches(images.Select(i => i.Path).ToList(), spec, 32, cancel: cancel))
        {
            if (batch.Count == 0) continue;
            using (var scope = NewDisposeScope())
            using (var _ = inference_mode())
            {
                Tensor? middle = null, pooled = null;
                var logits = network.Run(tensor(batch.Pixels, [batch.Count, 3, spec.Size, spec.Size]), (node, value) =>
                {
                    if (node.Name == earlierLayer) middle = value.mean([2, 3]);
                    if (node.Name == featureLayer) pooled = value.mean([2, 3]);
                });
                var probabilities = Objective.Probabilities(logits);
                var (best, index) = probabilities.max(1);
                Rows(pooled!, top);
                Rows(middle!, earlier);
                confidence.AddRange(best.data<float>().ToArray().Select(v => (double)v));
                labels.AddRange(index.data<long>().ToArray().Select(i => model.Classes[(int)i]));
            }
            classes.AddRange(batch.Indices.Select(i => images[i].Label));
            done += batch.Count;
            callbacks.Images?.Report(new ImageProgress("probe", done, images.Count, done / clock.Elapsed.TotalSeconds));
        }
        return (top.ToArray(), earlier.ToArray(), classes.ToArray(), confidence, labels);
    }

    static void Rows(Tensor t, List<float[]> into)
    {
        int n = (int)t.shape[0], c = (int)t.shape[1];
        var flat = t.contiguous().data<float>().ToArray();
        for (int i = 0; i < n; i++) into.Add(flat.AsSpan(i * c, c).ToArray());
    }

    /// <summary>Mean accuracy of a linear softmax classifier (standardised features) over k stratified folds.</summary>
    public static double CrossValidatedProbe(float[][] features, int[] labels, int classes, int seed, int folds = 5)
    {
        int n = labels.Length, c = features[0].Length;
        var fold = new int[n];
        var rng = new Random(seed);
        foreach (var group in Enumerable.Range(0, n).GroupBy(i => labels[i]))
        {
            var members = group.OrderBy(_ => rng.Next()).ToArray();
            for (int k = 0; k < members.Length; k++) fold[members[k]] = k % folds;
        }
        double correct = 0;
        for (int f = 0; f < folds; f++)
        {
            var trainIdx = Enumerable.Range(0, n).Where(i => fold[i] != f).ToArray();
            var testIdx = Enumerable.Range(0, n).Where(i => fold[i] == f).ToArray();
            if (testIdx.Length == 0 || trainIdx.Length == 0) continue;
            using var scope = NewDisposeScope();
            var xTrain = Stack(features, trainIdx, c);
            var mean = xTrain.mean([0]);
            var std = xTrain.std(dimensions: [0]).add(1e-6);
            xTrain = (xTrain - mean) / std;
            var xTest = (Stack(features, testIdx, c) - mean) / std;
            var yTrain = tensor(trainIdx.Select(i => (long)labels[i]).ToArray());
            manual_seed(seed + f);
            var probe = new HeadConfig(c, classes, Dropout: 0).Build();
            HeadTrainer.Fit(probe, xTrain, yTrain, null, null, new FitOptions(Epochs: 40, BatchSize: 32, LearningRate: 1e-2, Seed: seed));
            var predicted = HeadTrainer.Score(probe, xTest, null).Probabilities;
            for (int k = 0; k < testIdx.Length; k++)
            {
                int best = 0;
                for (int j = 1; j < classes; j++) if (predicted[k, j] > predicted[k, best]) best = j;
                if (best == labels[testIdx[k]]) correct++;
            }
        }
        return correct / n;
    }

    static Tensor Stack(float[][] rows, int[] index, int c)
    {
        var flat = new float[index.Length * c];
        for (int k = 0; k < index.Length; k++) rows[index[k]].CopyTo(flat, k * c);
        return tensor(flat, [index.Length, c]);
    }

    /// <summary>Median width and height, read from the file headers (no full decode).</summary>
    static (int Width, int Height) MedianSize(IReadOnlyList<string> files)
    {
        var sizes = files.Select(f =>
        {
            using var codec = SKCodec.Create(f);
            return codec is null ? (0, 0) : (codec.Info.Width, codec.Info.Height);
        }).Where(s => s.Item1 > 0).ToList();
        if (sizes.Count == 0) return (0, 0);
        return (sizes.Select(s => s.Item1).Order().ElementAt(sizes.Count / 2), sizes.Select(s => s.Item2).Order().ElementAt(sizes.Count / 2));
    }
}
