using Graft.Data;
using Graft.Engine;
using Graft.Evaluation;
using Graft.Heads;
using Graft.Training;
using SkiaSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>Multi-label classification: the metrics on hand-computed cases, the loss, and a model trained on 2x2 mosaics.</summary>
public class MultiLabelTests(ITestOutputHelper output)
{
    [Fact]
    public void Average_precision_of_a_known_ranking()
    {
        // Ranked T F T F: precision 1 at recall 1/2, 2/3 at recall 1.
        Assert.Equal(1 * 0.5 + 2.0 / 3 * 0.5, MultiLabelResult.AveragePrecision([0.9f, 0.8f, 0.7f, 0.6f], [true, false, true, false]), 9);
        Assert.Equal(1.0, MultiLabelResult.AveragePrecision([0.2f, 0.9f, 0.1f], [false, true, false]), 9);
        // Tied scores are one step: the positive tied with a negative counts at precision 1/3, not 1/2.
        Assert.Equal(1.0 / 3, MultiLabelResult.AveragePrecision([0.9f, 0.5f, 0.5f], [false, true, false]), 9);
        Assert.Equal(0, MultiLabelResult.AveragePrecision([0.9f, 0.5f], [false, false]));
    }

    [Fact]
    public void Metrics_of_a_small_multi_label_evaluation()
    {
        string[] classes = ["beach", "dog", "cat"];
        float[,] p =
        {
            { 0.9f, 0.8f, 0.1f }, // carries beach, dog: predicted beach, dog (exact)
            { 0.7f, 0.2f, 0.6f }, // carries beach: predicted beach, cat (one extra)
            { 0.3f, 0.4f, 0.2f }, // carries dog: predicted dog at its threshold 0.4 (exact)
            { 0.1f, 0.1f, 0.1f }, // carries nothing: predicted nothing (exact)
        };
        int[][] truth = [[0, 1], [0], [1], []];
        var r = MultiLabelResult.From(["a", "b", "c", "d"], p, truth, classes, [0.5, 0.4, 0.5]);
        Assert.Equal(4, r.Images);
        Assert.Equal(0.75, r.SubsetAccuracy, 9);
        Assert.Equal(1.0 / 12, r.HammingLoss, 9);
        // Pooled: 4 true positives, 5 predicted, 4 carried.
        Assert.Equal(2.0 * 4 / (5 + 4), r.MicroF1, 9);
        // beach: P 1 R 1; dog: P 1 R 1; cat carried by none, so it is left out of the macro means.
        Assert.Equal(1.0, r.MacroF1, 9);
        Assert.Null(r.PerLabel[2].AveragePrecision);
        Assert.Equal(0, r.PerLabel[2].F1);
        Assert.Equal(1, r.PerLabel[2].Predicted);
        // beach ranks a(T) b(T) c d: AP 1; dog ranks a(T) c(T) b d: AP 1.
        Assert.Equal(1.0, r.MeanAveragePrecision, 9);
        Assert.Equal(Interval.Wilson(3, 4), r.SubsetAccuracyInterval);
        Assert.Equal([0, 2], r.Items[1].Predicted);
        // The loss is the mean binary cross-entropy over the 12 decisions.
        double expected = 0;
        for (int i = 0; i < 4; i++)
            for (int c = 0; c < 3; c++) expected -= Math.Log(truth[i].Contains(c) ? p[i, c] : 1 - p[i, c]);
        Assert.Equal(expected / 12, r.Loss, 6);
        // At other thresholds the figures change and the probabilities stay.
        var strict = r.At([0.95, 0.95, 0.95]);
        Assert.Equal(0.25, strict.SubsetAccuracy, 9);
        Assert.Equal(r.MeanAveragePrecision, strict.MeanAveragePrecision, 9);
    }

    [Fact]
    public void Thresholds_maximise_each_labels_F1_and_default_without_positives()
    {
        float[,] p = { { 0.9f, 0.3f }, { 0.6f, 0.2f }, { 0.4f, 0.8f }, { 0.1f, 0.7f } };
        int[][] truth = [[0], [], [0], []];
        var r = MultiLabelResult.From(["a", "b", "c", "d"], p, truth, ["x", "y"], [0.5, 0.5]);
        var thresholds = r.MaxF1Thresholds();
        // x: calling the top 3 positive gives F1 2*2/(3+2) = 0.8, the best; halfway between 0.4 and 0.1.
        Assert.Equal(0.25, thresholds[0], 6);
        Assert.Equal(0.5, thresholds[1]);
        Assert.Equal(0.8, r.At(thresholds).PerLabel[0].F1, 6);
    }

    [Fact]
    public void Multi_hot_targets_train_with_binary_cross_entropy_and_mix_linearly()
    {
        TorchRuntime.EnsureInitialized();
        using var logits = tensor(new float[] { 2, -1, 0.5f, -3, 1, 0 }, [2, 3]);
        using var targets = tensor(new float[] { 1, 0, 1, 0, 0, 1 }, [2, 3]);
        using var expected = nn.functional.binary_cross_entropy_with_logits(logits, targets);
        using var loss = Objective.Loss(logits, targets);
        Assert.Equal(expected.item<float>(), loss.item<float>(), 5);
        // pos_weight scales each label's positive term only.
        using var weights = tensor(new float[] { 3, 1, 1 });
        using var weighted = Objective.Loss(logits, targets, weights);
        double manual = 0;
        var l = logits.data<float>().ToArray();
        var t = targets.data<float>().ToArray();
        for (int i = 0; i < 6; i++)
        {
            double w = i % 3 == 0 ? 3 : 1, s = 1 / (1 + Math.Exp(-l[i]));
            manual -= w * t[i] * Math.Log(s) + (1 - t[i]) * Math.Log(1 - s);
        }
        Assert.Equal(manual / 6, weighted.item<float>(), 4);
        // MixUp's weighted sum of the two losses is the loss of the mixed targets (binary cross-entropy is linear in its target).
        using var partners = targets.flip(0);
        var mixed = new MixedBatch(logits, targets, partners, 0.3).Loss(logits, 0, 2, null, 0);
        using var ofMixed = Objective.Loss(logits, targets * 0.3 + partners * 0.7);
        Assert.Equal(ofMixed.item<float>(), mixed.item<float>(), 5);
        Assert.Equal(1, Objective.Correct(logits, targets)); // the first row's decisions all match, the second's do not
        using var p = Objective.Probabilities(logits, multiLabel: true);
        Assert.True(p.allclose(logits.sigmoid()));
    }

    [Fact]
    public async Task A_model_trained_on_mosaics_finds_the_labels_and_carries_them_to_inference_and_onnx()
    {
        using var dir = new TempDir();
        var dataset = Mosaics.Write(dir["data"], train: 72, validation: 30, test: 30, seed: 3);
        var options = new TrainOptions
        {
            CacheRoot = dir["cache"], InputSize = 64, Strategy = Strategy.FeatureExtraction, Fit = new FitOptions(Epochs: 30, BatchSize: 16, LearningRate: 3e-3),
        };
        var result = await Learner.TrainAsync(dataset, options, Assets.Resolver);
        Assert.Null(result.Validation);
        var test = Assert.IsType<MultiLabelResult>(result.MultiLabelTest);
        Assert.NotNull(result.MultiLabelValidation);
        Assert.Equal(30, test.Images);
        // Chance: a random ranking's AP is about the label's share of images.
        double chance = Enumerable.Range(0, 3).Average(c => dataset.Test.Count(i => i.Labels.Contains(c)) / (double)dataset.Test.Count);
        output.WriteLine($"mosaics: test mAP {test.MeanAveragePrecision:0.000} (micro {test.MicroAveragePrecision:0.000}), micro-F1 {test.MicroF1:0.000}, " +
            $"macro-F1 {test.MacroF1:0.000}, subset accuracy {test.SubsetAccuracy:0.000}, Hamming loss {test.HammingLoss:0.000}; chance mAP about {chance:0.000}; " +
            $"thresholds {string.Join(", ", result.Model.Config.Thresholds!.Select(t => t.ToString("0.00")))}");
        Assert.True(test.MeanAveragePrecision > chance + 0.3, $"test mAP {test.MeanAveragePrecision:0.000} (chance {chance:0.000})");
        var thresholds = Assert.IsAssignableFrom<IReadOnlyList<double>>(result.Model.Config.Thresholds);
        Assert.Equal(result.MultiLabelValidation!.MaxF1Thresholds(), thresholds);
        Assert.Equal(thresholds, test.Thresholds);
        Assert.True(result.Model.Config.Head.MultiLabel);

        result.Model.Save(dir["m.graft"]);
        var files = dataset.Test.Select(i => i.Path).ToList();
        var mine = await result.Model.PredictAsync(files, 3, []);
        using var model = ImageClassifier.Load(dir["m.graft"]);
        Assert.True(model.Info.MultiLabel);
        Assert.Equal(thresholds, model.Info.Thresholds);
        var theirs = (await model.PredictAsync(files, top: 3)).Predictions;
        for (int k = 0; k < files.Count; k++)
        {
            var labels = Assert.IsAssignableFrom<IReadOnlyList<ClassProbability>>(theirs[k].Labels);
            // Every label at or above its threshold, with its probability, as the libtorch model decides.
            Assert.Equal(mine[k].Labels!.Select(l => l.Label), labels.Select(l => l.Label));
            Assert.Equal(test.Items[k].Predicted.Select(c => model.Classes[c]).Order(), labels.Select(l => l.Label).Order());
            foreach (var label in labels) Assert.True(label.Probability >= thresholds[model.Classes.ToList().IndexOf(label.Label)]);
        }

        // The exported network's probabilities are each output's sigmoid: those of the libtorch model, not a softmax summing to 1.
        using var images = TorchDevices.Images(
            (await Graft.Imaging.BatchPipeline.Batches(files.Take(8).ToList(), result.Model.Config.Input, 8).FirstAsync()).Pixels, 8, 64, CPU);
        using var torchProbabilities = result.Model.Probabilities(images);
        var onnx = theirs.Take(8).Select(pr => model.Classes.Select(c => pr.Top.First(t => t.Label == c).Probability).ToArray()).ToArray();
        for (int k = 0; k < 8; k++)
            for (int c = 0; c < 3; c++) Assert.Equal(torchProbabilities[k, c].item<float>(), onnx[k][c], 3);
        Assert.Contains(onnx, row => Math.Abs(row.Sum() - 1) > 0.05);

        // train --json: the task, and the multi-label figures of each measured set.
        var json = Graft.Cli.TrainView.Json(result, dir["m.graft"]);
        Assert.Equal("multi-label", json["task"]);
        var measured = Assert.IsType<Dictionary<string, object?>>(json["test"]);
        Assert.Equal(test.MeanAveragePrecision, measured["map"]);
        Assert.Equal(test.SubsetAccuracy, measured["subset_accuracy"]);
        Assert.Equal(30, measured["images"]);
        Assert.Equal(result.MultiLabelValidation!.MicroF1, Assert.IsType<Dictionary<string, object?>>(json["validation"])["micro_f1"]);

        // graft predict --json lists each image's labels; graft evaluate measures the model on class folders (one label each).
        var predict = GraftCli.Run(null, "predict", dir["m.graft"], files[0], "--json");
        Assert.True(predict.ExitCode == 0, predict.Stderr);
        var row = System.Text.Json.Nodes.JsonNode.Parse(predict.LastLine)!["predictions"]![0]!;
        Assert.Equal(theirs[0].Labels!.Select(l => l.Label), row["labels"]!.AsArray().Select(l => (string)l!["label"]!));
        Assert.NotNull(row["top"]);
        foreach (var image in dataset.Test.Where(i => i.Labels.Count == 1))
        {
            var folder = dir[Path.Combine("single", Mosaics.Classes[image.Label])];
            Directory.CreateDirectory(folder);
            File.Copy(image.Path, Path.Combine(folder, Path.GetFileName(image.Path)));
        }
        var evaluate = GraftCli.Run(null, "evaluate", dir["m.graft"], dir["single"], "--json");
        Assert.True(evaluate.ExitCode == 0, evaluate.Stderr);
        var evaluated = System.Text.Json.Nodes.JsonNode.Parse(evaluate.LastLine)!;
        Assert.Equal("multi-label", (string)evaluated["task"]!);
        Assert.Equal(dataset.Test.Count(i => i.Labels.Count == 1), (int)evaluated["images"]!);
        Assert.InRange((double)evaluated["map"]!, 0, 1);
        var report = GraftCli.Run(null, "evaluate", dir["m.graft"], dir["single"], "--report", dir["report"]);
        Assert.True(report.ExitCode == 0, report.Stderr);
        Assert.Contains("id=\"per-label-table\"", File.ReadAllText(dir["report/index.html"]));
        var csv = GraftCli.Run(null, "evaluate", dir["m.graft"], dir["single"], "--csv", dir["rows.csv"]);
        Assert.Equal(2, csv.ExitCode); // a user's error, in one line
        Assert.Contains("--csv is not available for multi-label models yet", csv.Stderr);
    }
    [Fact]
    public async Task A_class_no_training_image_carries_is_refused_in_one_line()
    {
        using var dir = new TempDir();
        var dataset = Mosaics.Write(dir["data"], train: 12, validation: 4, test: 0, seed: 9);
        // Without blue in any training image (blue is class 0).
        var train = dataset.Train.Select(i => i with { Labels = i.Labels.Where(c => c != 0).ToList() }).ToList();
        var e = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dataset with { Train = train },
            new TrainOptions { CacheRoot = dir["cache"], InputSize = 64, Strategy = Strategy.FeatureExtraction, Fit = new FitOptions(Epochs: 1) }, Assets.Resolver));
        Assert.Contains("carries the class blue", e.Message);
    }

    [Fact]
    public async Task Fine_tuning_trains_on_multi_hot_targets_with_MixUp_smoothing_and_positive_weights()
    {
        using var dir = new TempDir();
        var dataset = Mosaics.Write(dir["data"], train: 32, validation: 16, test: 0, seed: 5);
        var options = new TrainOptions
        {
            CacheRoot = dir["cache"], InputSize = 64, Strategy = Strategy.FineTune, BalancedClassWeights = true,
            Fit = new FitOptions(Epochs: 4, BatchSize: 8, LearningRate: 3e-3),
            FineTune = new FitOptions(Epochs: 2, BatchSize: 8, LearningRate: 1e-4) { MixUp = 0.4, LabelSmoothing = 0.1 },
            Unfreeze = new UnfreezeSpec(TopBlocks: 1),
        };
        var result = await Learner.TrainAsync(dataset, options, Assets.Resolver);
        Assert.Equal(6, result.Fit.History.Count); // 4 head epochs, then 2 on live images
        Assert.All(result.Fit.History, h => Assert.True(double.IsFinite(h.Loss) && h.ValLoss is > 0 && double.IsFinite(h.ValLoss.Value)));
        Assert.NotNull(result.FineTuningKept);
        var validation = Assert.IsType<MultiLabelResult>(result.MultiLabelValidation);
        Assert.Equal(16, validation.Images);
        Assert.Equal(validation.Thresholds, result.Model.Config.Thresholds);
        Assert.InRange(validation.MeanAveragePrecision, 0, 1);
    }
}

/// <summary>
/// Multi-label photos: 2x2 mosaics whose tiles are red, green or blue squares on noise, or plain noise; an image carries
/// every colour one of its tiles shows (none, one, two or three).
/// </summary>
public static class Mosaics
{
    static readonly SKColor[] Colors = [new(210, 40, 40), new(40, 190, 60), new(40, 60, 210)];
    public static readonly string[] Classes = ["blue", "green", "red"];

    public static ImageDataset Write(string root, int train, int validation, int test, int seed, int tile = 32)
    {
        Directory.CreateDirectory(root);
        var rng = new Random(seed);
        List<LabeledImage> Part(string name, int count) => Enumerable.Range(0, count).Select(i =>
        {
            var path = Path.Combine(root, $"{name}_{i:000}.png");
            var carried = Write(path, rng, tile);
            return new LabeledImage(path, carried.Count > 0 ? carried[0] : -1) { Labels = carried };
        }).ToList();
        return new ImageDataset(root, Classes, Part("train", train), Part("val", validation), "mosaics") { Test = Part("test", test), MultiLabel = true };
    }

    /// <summary>Writes one mosaic and returns the classes it shows (indices into <see cref="Classes"/>, sorted).</summary>
    static List<int> Write(string path, Random rng, int tile)
    {
        var carried = new SortedSet<int>();
        using var bitmap = new SKBitmap(2 * tile, 2 * tile);
        using (var canvas = new SKCanvas(bitmap))
        {
            for (int t = 0; t < 4; t++)
            {
                float x = t % 2 * tile, y = t / 2 * tile;
                using var noise = new SKPaint { Color = new SKColor((byte)rng.Next(90, 170), (byte)rng.Next(90, 170), (byte)rng.Next(90, 170)) };
                canvas.DrawRect(x, y, tile, tile, noise);
                int colour = rng.Next(5) - 2; // -2, -1: plain; 0..2: a colour
                if (colour < 0) continue;
                using var paint = new SKPaint { Color = Colors[colour] };
                float side = tile * (0.5f + 0.4f * (float)rng.NextDouble());
                canvas.DrawRect(x + (float)rng.NextDouble() * (tile - side), y + (float)rng.NextDouble() * (tile - side), side, side, paint);
                carried.Add(Array.IndexOf(Classes, colour switch { 0 => "red", 1 => "green", _ => "blue" }));
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return [.. carried];
    }
}
