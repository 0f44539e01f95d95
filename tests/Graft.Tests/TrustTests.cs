using System.Text.Json;
using Graft.Backbones;
using Graft.Evaluation;
using Graft.Heads;
using Graft.Models;
using Graft.Training;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>Calibrated confidence and "none of these": the fitting, the measures, and the same numbers on both sides of the model file.</summary>
public class TrustTests
{
    /// <summary>Probabilities of softmax(logits) for logits drawn at random, and labels drawn from softmax(logits / temperature).</summary>
    static (float[,] Probabilities, int[] Labels) Overconfident(int n, int classes, double temperature, int seed)
    {
        var rng = new Random(seed);
        var probabilities = new float[n, classes];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            var z = Enumerable.Range(0, classes).Select(_ => 4 * (rng.NextDouble() - 0.5) * 3).ToArray();
            double Softmax(double t, int c) => Math.Exp(z[c] / t) / z.Sum(v => Math.Exp(v / t));
            for (int c = 0; c < classes; c++) probabilities[i, c] = (float)Softmax(1, c);
            double u = rng.NextDouble();
            labels[i] = classes - 1;
            for (int c = 0; c < classes; c++) if ((u -= Softmax(temperature, c)) < 0) { labels[i] = c; break; }
        }
        return (probabilities, labels);
    }

    [Fact]
    public void Temperature_scaling_finds_the_temperature_that_drew_the_labels_and_removes_the_calibration_error()
    {
        var (probabilities, labels) = Overconfident(4000, 4, temperature: 2, seed: 1);
        Assert.InRange(Calibration.FitTemperature(probabilities, labels), 1.85, 2.15);
        var fitted = Calibration.Fit(probabilities, labels);
        Assert.True(fitted.EceBefore > 0.1, $"ECE before {fitted.EceBefore}");
        Assert.True(fitted.Ece < 0.03, $"ECE after {fitted.Ece}");
        Assert.Equal(fitted.Ece, Calibration.Ece(Calibration.Scale(probabilities, fitted.Temperature), labels), 9);

        // Already calibrated: the temperature stays near 1 and the error does not grow.
        var (calibrated, drawn) = Overconfident(4000, 3, temperature: 1, seed: 2);
        var kept = Calibration.Fit(calibrated, drawn);
        Assert.InRange(kept.Temperature, 0.9, 1.1);
        Assert.True(kept.Ece <= kept.EceBefore);

        // A binary head's [1 - p, p] scales as sigmoid(logit / T).
        float p = 0.9f;
        var scaled = Calibration.Scale(new float[,] { { 1 - p, p } }, 3);
        Assert.Equal(1 / (1 + Math.Exp(-Math.Log(p / (1 - p)) / 3)), scaled[0, 1], 5);
        Assert.Equal(1, scaled[0, 0] + scaled[0, 1], 5);
    }

    [Fact]
    public void Reliability_bins_thresholds_and_auroc_count_as_defined()
    {
        // Confidences 0.95 (right), 0.95 (wrong), 0.55 (right): bins (14/15, 1] and (8/15, 9/15].
        var bins = Calibration.Reliability(new float[,] { { 0.95f, 0.05f }, { 0.05f, 0.95f }, { 0.55f, 0.45f } }, [0, 0, 0]);
        Assert.Equal(15, bins.Count);
        Assert.Equal(2, bins[14].Images);
        Assert.Equal(0.5, bins[14].Accuracy);
        Assert.Equal(1, bins[8].Images);
        Assert.Equal((2 * 0.45 + 1 * 0.45) / 3, Calibration.Ece(bins), 6);

        Assert.Equal(0.4, OutOfDistribution.Threshold([0.1, 0.2, 0.3, 0.4, 0.5], 0.8));
        Assert.Equal(0.5, OutOfDistribution.Threshold([0.1, 0.2, 0.3, 0.4, 0.5], 0.95));
        Assert.Equal(1, OutOfDistribution.Auroc([0.1, 0.2], [0.3, 0.4]));
        Assert.Equal(0, OutOfDistribution.Auroc([0.3, 0.4], [0.1, 0.2]));
        Assert.Equal(0.5, OutOfDistribution.Auroc([0.2, 0.2], [0.2]));
        Assert.Equal(0.75, OutOfDistribution.Auroc([0.1, 0.3], [0.2, 0.4]));
        var measured = OutOfDistribution.Measure(new OodConfig(OodScore.Knn, 0.25, 0.95, 2), [0.1, 0.2, 0.3], [0.2, 0.4, 0.5, 0.6]);
        Assert.Equal(0.25, measured.FalseAcceptance);
        Assert.Equal(2 / 3.0, measured.Acceptance, 9);
    }

    [Fact]
    public void Mahalanobis_with_all_but_one_direction_kept_is_the_distance_under_the_ledoit_wolf_covariance()
    {
        const int n = 60, p = 6;
        var rng = new Random(5);
        double[] spread = [3, 2, 1, 1, 0.5, 0.2];
        var labels = Enumerable.Range(0, n).Select(i => i % 2).ToArray();
        var rows = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, p).Select(j => (float)(spread[j] * Gaussian(rng) + 2 * labels[i])).ToArray()).ToArray();
        using var detector = OutOfDistribution.Fit(OodScore.Mahalanobis, rows, labels, 2, new TrustOptions { Rank = p - 1 });

        // The reference, written out: class means, the pooled covariance S, Ledoit and Wolf's shrinkage
        // min(b2, d2) / d2 with d2 = |S - mu I|^2 / p and b2 = sum_k |x_k x_k' - S|^2 / (p n^2), and the inverse.
        var means = Enumerable.Range(0, 2).Select(c => Enumerable.Range(0, p).Select(j => rows.Where((_, i) => labels[i] == c).Average(r => (double)r[j])).ToArray()).ToArray();
        var centred = rows.Select((r, i) => r.Select((v, j) => v - means[labels[i]][j]).ToArray()).ToArray();
        var s = new double[p, p];
        foreach (var x in centred) for (int a = 0; a < p; a++) for (int b = 0; b < p; b++) s[a, b] += x[a] * x[b] / n;
        double mu = Enumerable.Range(0, p).Sum(a => s[a, a]) / p, d2 = 0, b2 = 0;
        for (int a = 0; a < p; a++) for (int b = 0; b < p; b++) d2 += Math.Pow(s[a, b] - (a == b ? mu : 0), 2) / p;
        foreach (var x in centred) for (int a = 0; a < p; a++) for (int b = 0; b < p; b++) b2 += Math.Pow(x[a] * x[b] - s[a, b], 2) / (p * (double)n * n);
        double shrinkage = Math.Min(b2, d2) / d2;
        var shrunk = new double[p * p];
        for (int a = 0; a < p; a++) for (int b = 0; b < p; b++) shrunk[a * p + b] = (1 - shrinkage) * s[a, b] + (a == b ? shrinkage * mu : 0);
        using var precision = linalg.inv(tensor(shrunk, [p, p]));
        var inverse = precision.data<double>().ToArray();

        var probes = Enumerable.Range(0, 5).Select(_ => Enumerable.Range(0, p).Select(j => (float)(4 * Gaussian(rng))).ToArray()).ToArray();
        using var scores = detector.Score(tensor(probes.SelectMany(r => r).ToArray(), [5, p]), zeros(5, 2), null);
        for (int i = 0; i < probes.Length; i++)
        {
            double expected = means.Min(m =>
            {
                var d = probes[i].Select((v, j) => v - m[j]).ToArray();
                return Enumerable.Range(0, p).Sum(a => Enumerable.Range(0, p).Sum(b => d[a] * inverse[a * p + b] * d[b])) / p;
            });
            Assert.Equal(expected, scores[i].item<float>(), expected * 1e-4);
        }
    }

    /// <summary>
    /// The small CNN at 48x48 with a head of <paramref name="pooling"/> (linear on global average pooling, or flatten into a
    /// hidden layer), temperature 1.7 and a detector of <paramref name="score"/> fitted on the trunk features of half of
    /// <paramref name="files"/>, its threshold on the other half at 50% acceptance (so some photos are unknown).
    /// </summary>
    static async Task<TrainableClassifier> ModelWithTrust(OodScore score, bool binary, Pooling pooling, IReadOnlyList<string> files)
    {
        Engine.TorchRuntime.EnsureInitialized();
        manual_seed(7);
        var network = BackboneRegistry.Get("small_cnn");
        var backbone = Backbone.Create(network, new(48), network.Spec(48));
        var (channels, positions) = backbone.FeatureShape(48);
        string[] classes = binary ? ["a", "b"] : ["a", "b", "c"];
        var head = new HeadConfig(pooling == Pooling.Gap ? channels : channels * positions, classes.Length,
            Hidden: pooling == Pooling.Gap ? 0 : 8, Pooling: pooling) { Binary = binary, TrunkChannels = channels };
        var config = new ModelConfig(ModelConfig.CurrentFormat, network.Name, "none", backbone.Input, classes, head, "scratch",
            new FitOptions(Epochs: 0), null, DateTime.UtcNow) { Architecture = backbone.Architecture, TemperatureScaling = new TemperatureScaling(1.7, 20, 0.1, 0.05) };
        var plain = new TrainableClassifier(config, backbone, head.Build(), []); // its modules go on to the model returned
        var extracted = await BottleneckFeatures.ExtractAsync(files, plain.Trunk, plain.Config.Input, head.InputChannels, cache: null);
        using var all = extracted.Stack(extracted.ReadRows(0, files.Count), TorchSharp.torch.CPU);
        using var means = OodDetector.ChannelMeans(all, channels);
        var rows = Enumerable.Range(0, files.Count).Select(i => means[i].data<float>().ToArray()).ToArray();
        int half = files.Count / 2;
        var detector = OutOfDistribution.Fit(score, rows[..half], Enumerable.Range(0, half).Select(i => i % classes.Length).ToArray(), classes.Length,
            new TrustOptions { Acceptance = 0.5, Neighbours = 3, Rank = 4 });
        using (var logits = plain.Head.forward(all.narrow(0, half, files.Count - half)))
        using (var scores = detector.Score(all.narrow(0, half, files.Count - half), logits, config.TemperatureScaling))
            OutOfDistribution.SetThreshold(detector, scores.data<float>().ToArray().Select(v => (double)v).ToList());
        plain.ResetTrunkRunner();
        return new TrainableClassifier(config with { OutOfDistribution = detector.Config }, plain.Backbone, plain.Head, [], detector);
    }

    [Theory]
    [InlineData(OodScore.Msp, false, Pooling.Gap)]
    [InlineData(OodScore.Energy, false, Pooling.Gap)]
    [InlineData(OodScore.Knn, false, Pooling.Gap)]
    [InlineData(OodScore.Mahalanobis, false, Pooling.Gap)]
    [InlineData(OodScore.Msp, true, Pooling.Gap)]
    [InlineData(OodScore.Energy, true, Pooling.Gap)]
    [InlineData(OodScore.Knn, true, Pooling.Flatten)]
    [InlineData(OodScore.Mahalanobis, false, Pooling.Flatten)]
    public async Task The_model_file_and_its_onnx_network_give_the_same_calibrated_confidence_score_and_unknown(OodScore score, bool binary, Pooling pooling)
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["photos"], perClass: 6, classes: 3, size: 48);
        var files = Directory.GetFiles(dir["photos"], "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        using var model = await ModelWithTrust(score, binary, pooling, files);
        model.Save(dir["m.graft"]);
        var expected = await model.PredictAsync(files, 2, []);
        Assert.Contains(expected, p => p.Unknown);
        Assert.Contains(expected, p => !p.Unknown);

        using var reloaded = TrainableClassifier.Load(dir["m.graft"]);
        Assert.Equal(model.Config.OutOfDistribution, reloaded.Config.OutOfDistribution);
        using var classifier = ImageClassifier.Load(dir["m.graft"]);
        Assert.Equal(1.7, classifier.Info.Temperature);
        Assert.Equal(score.ToString().ToLowerInvariant(), classifier.Info.Unknown!.Score);
        var onnx = (await classifier.PredictAsync(files, 2)).Predictions;
        foreach (var (mine, (loaded, theirs)) in expected.Zip((await reloaded.PredictAsync(files, 2, [])).Zip(onnx)))
        {
            Assert.Equal(mine, loaded with { Top = mine.Top }); // the same record, bit for bit, after a round trip
            Assert.Equal(mine.Top, loaded.Top);
            Assert.Equal(mine.Label, theirs.Label);
            Assert.Equal(mine.Confidence, theirs.Confidence, 4);
            Assert.Equal(mine.OodScore!.Value, theirs.OodScore!.Value, Math.Max(1e-4, Math.Abs(mine.OodScore.Value) * 1e-4));
            if (Math.Abs(mine.OodScore.Value - model.Config.OutOfDistribution!.Threshold) > 1e-3) Assert.Equal(mine.Unknown, theirs.Unknown);
        }
        classifier.AcceptAll = true;
        Assert.DoesNotContain((await classifier.PredictAsync(files, 2)).Predictions, p => p.Unknown);
        Assert.DoesNotContain(await model.PredictAsync(files, 2, [], acceptAll: true), p => p.Unknown);

        // A linear head on global average pooling: ONNX Runtime's class activation map is Grad-CAM's, exactly.
        Assert.Equal(pooling == Pooling.Gap, classifier.CanExplain);
        if (!classifier.CanExplain) return;
        var classes = expected.Select(p => model.Classes.ToList().IndexOf(p.Label)).ToList();
        var gradCam = await model.HeatMapsAsync(files, classes);
        for (int i = 0; i < files.Count; i++)
        {
            var cam = classifier.Explain(files[i]).Explanation!.Map!;
            Assert.Equal(gradCam[i]!.Values.Count, cam.Values.Count);
            Assert.All(cam.Values.Zip(gradCam[i]!.Values), v => Assert.Equal(v.Second, v.First, 3));
        }
    }

    [Fact]
    public async Task Training_calibrates_and_sets_the_threshold_and_the_command_line_reports_them()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data/train"], perClass: 10, classes: 3, size: 48);
        TinyImages.WriteClassFolders(dir["data/val"], perClass: 8, classes: 3, size: 48, seed: 3);
        var photos = Assets.Shared("images/imagenet"); // real photos: none of these colour cards
        var trained = await Learner.TrainAsync(dir["data"], new TrainOptions { CacheRoot = dir["cache"], Fit = new FitOptions(Epochs: 10) }, Assets.Resolver);
        var scaling = trained.Model.Config.TemperatureScaling!;
        Assert.Equal(24, scaling.Images);
        Assert.InRange(scaling.Temperature, 0.05, 20);
        var ood = trained.Model.Config.OutOfDistribution!;
        Assert.Equal(OodScore.Knn, ood.Score);
        Assert.Equal(30, ood.References);
        // The validation results are the calibrated ones, with their calibration error.
        Assert.Equal(scaling.Ece, trained.Validation!.Calibration!.Ece, 6);
        trained.Model.Save(dir["m.graft"]);
        trained.Model.Dispose();

        var predicted = GraftCli.Run(null, "predict", dir["m.graft"], dir["data/val/red"], photos, "--explain", dir["heat"], "--json");
        Assert.True(predicted.ExitCode == 0, predicted.Stderr);
        var predictions = JsonDocument.Parse(predicted.LastLine).RootElement.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(18, predictions.Count);
        foreach (var p in predictions)
        {
            Assert.True(p.GetProperty("ood_score").GetDouble() >= 0);
            var explanation = p.GetProperty("explanation");
            Assert.True(File.Exists(explanation.GetProperty("heatmap").GetString()));
            using var photo = SkiaSharp.SKBitmap.Decode(p.GetProperty("file").GetString());
            Assert.InRange(explanation.GetProperty("peak").GetProperty("x").GetInt32(), 0, photo.Width - 1);
            Assert.InRange(explanation.GetProperty("peak").GetProperty("y").GetInt32(), 0, photo.Height - 1);
        }
        var others = predictions.Where(p => p.GetProperty("file").GetString()!.StartsWith(photos)).ToList();
        Assert.Equal(10, others.Count);
        Assert.All(others, p => Assert.True(p.GetProperty("unknown").GetBoolean(), p.GetProperty("file").GetString()));
        Assert.Contains("unknown", predicted.Stdout + predicted.Stderr);
        var all = GraftCli.Run(null, "predict", dir["m.graft"], photos, "--accept-all", "--json");
        Assert.DoesNotContain(JsonDocument.Parse(all.LastLine).RootElement.GetProperty("predictions").EnumerateArray(), p => p.GetProperty("unknown").GetBoolean());

        var evaluated = GraftCli.Run(null, "evaluate", dir["m.graft"], dir["data"], "--json");
        Assert.True(evaluated.ExitCode == 0, evaluated.Stderr);
        var calibration = JsonDocument.Parse(evaluated.LastLine).RootElement.GetProperty("calibration");
        Assert.Equal(scaling.Temperature, calibration.GetProperty("temperature").GetDouble(), 9);
        Assert.Equal(scaling.Ece, calibration.GetProperty("ece").GetDouble(), 6);
        Assert.Equal(scaling.EceBefore, calibration.GetProperty("ece_before").GetDouble(), 6);
    }

    [Fact]
    public void A_class_whose_heat_maps_peak_in_one_small_place_is_a_likely_shortcut_and_objects_centred_in_every_class_are_not()
    {
        var rng = new Random(3);
        double Near(double at) => at + 0.05 * (rng.NextDouble() - 0.5);
        double Anywhere() => 0.2 + 0.6 * rng.NextDouble();
        // "cat" peaks in the top-left corner in 9 of 10 images; "dog" and "fox" around the centre, as photos are framed.
        var peaks = Enumerable.Range(0, 10).Select(i => new Audit.HeatMapPeak($"cat{i}", 0, i < 9 ? Near(0.1) : Anywhere(), i < 9 ? Near(0.1) : Anywhere()))
            .Concat(Enumerable.Range(0, 10).Select(i => new Audit.HeatMapPeak($"dog{i}", 1, Near(0.5), Near(0.5))))
            .Concat(Enumerable.Range(0, 10).Select(i => new Audit.HeatMapPeak($"fox{i}", 2, Near(0.5), Near(0.5))))
            .Concat(Enumerable.Range(0, 5).Select(i => new Audit.HeatMapPeak($"owl{i}", 3, Near(0.1), Near(0.1)))).ToList(); // too few to judge
        var found = Assert.Single(Audit.Shortcuts.Find(peaks, ["cat", "dog", "fox", "owl"]));
        Assert.Equal("cat", found.Class);
        Assert.Equal((10, 9), (found.Images, found.InRegion));
        Assert.InRange(found.X, 0.05, 0.15);
        Assert.Equal(5 / 25.0, found.OtherShare); // the owls there too
        Assert.Contains("9 of 10 cat images", Audit.Shortcuts.Describe(found));
    }

    static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
