using System.Text.Json;
using Graft.Data;
using Graft.Models;
using Graft.Training;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>Growing a model (train --from): classes kept and added, head weights carried over, test images kept, before/after measured.</summary>
public class GrowthTests
{
    [Fact]
    public void Growing_a_head_keeps_the_earlier_rows_and_starts_the_new_ones_as_a_fresh_head()
    {
        using var model = Networks.ScratchModel(["cats", "dogs"]);
        var earlier = model.Head.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var grown = model.Config with { Classes = ["cats", "dogs", "birds"], Head = model.Config.Head with { Classes = 3 } };
        var head = HeadGrowth.Grow(model, grown, seed: 7).Head.state_dict();
        manual_seed(7);
        using var fresh = grown.Head.Build();
        var freshWeights = fresh.state_dict();

        Assert.Equal(earlier.Keys.Order(), head.Keys.Order());
        foreach (var (name, before) in earlier)
        {
            var after = head[name];
            if (name.StartsWith("predictions.", StringComparison.Ordinal))
            {
                Assert.Equal(3, after.shape[0]);
                Assert.Equal(Values(before), Values(after.narrow(0, 0, 2)));
                Assert.Equal(Values(freshWeights[name].narrow(0, 2, 1)), Values(after.narrow(0, 2, 1)));
            }
            else Assert.Equal(Values(before), Values(after));
        }
        // A layer other than the class layer that would change shape is refused.
        using var other = Networks.ScratchModel(["cats", "dogs"]);
        Assert.Throws<ArgumentException>(() => HeadGrowth.Grow(other, other.Config with { Classes = ["cats", "dogs"], Head = other.Config.Head with { Hidden = 9 } }, 1));
    }

    static float[] Values(Tensor t) => t.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();

    [Fact]
    public async Task A_model_grows_a_class_keeps_its_test_images_and_measures_before_and_after()
    {
        using var dir = new TempDir();
        var data = dir["data"];
        TinyImages.WriteClassFolders(data, perClass: 10, classes: 2, size: 40); // red, green: classes green, red
        var options = new TrainOptions
        {
            CacheRoot = dir["cache"], InputSize = 96, ValidationSplit = 0.2, TestSplit = 0.3, Fit = new FitOptions(Epochs: 3, BatchSize: 4),
        };
        var first = await Learner.TrainAsync(data, options, Assets.Resolver);
        first.Model.Save(dir["two.graft"]);
        Assert.Equal(["green", "red"], first.Model.Classes);
        var firstTest = first.Dataset.Test.Select(i => i.Path).ToHashSet();
        var firstTrained = first.Dataset.Train.Concat(first.Dataset.Validation).Select(i => i.Path).ToHashSet();
        Assert.Equal(firstTest.Select(p => Path.GetRelativePath(data, p)).Order(), first.Model.Config.Dataset!.TestFiles!.Order());

        // New photos: a third class (blue sorts first, and must still come last) and more of the earlier two.
        TinyImages.WriteClassFolders(dir["more"], perClass: 10, classes: 3, size: 40, seed: 5);
        Directory.Move(dir["more/blue"], Path.Combine(data, "blue"));
        foreach (var name in new[] { "red", "green" })
            foreach (var file in Directory.GetFiles(dir[$"more/{name}"]).Take(3))
                File.Copy(file, Path.Combine(data, name, "new_" + Path.GetFileName(file)));

        var grown = await Learner.TrainAsync(data, options with { From = dir["two.graft"], InputSize = null, TestSplit = 0 }, Assets.Resolver);
        Assert.Equal(["green", "red", "blue"], grown.Model.Classes);
        Assert.Equal(3, grown.Model.Config.Head.Classes);
        Assert.Equal(dir["two.graft"], grown.Model.Config.Dataset!.GrewFrom);
        // The feature cache is the earlier run's: only the 16 new photos went through the trunk.
        Assert.Equal((16, 20), (grown.Features.Computed, grown.Features.CacheHits));

        // The earlier test images are test images still; no image the earlier model trained on became one; the new class has test images.
        var test = grown.Dataset.Test.Select(i => i.Path).ToHashSet();
        Assert.Subset(test, firstTest);
        Assert.Empty(test.Intersect(firstTrained));
        Assert.Empty(grown.Dataset.Train.Concat(grown.Dataset.Validation).Select(i => i.Path).Intersect(firstTest));
        Assert.Contains(grown.Dataset.Test, i => i.Label == 2);
        Assert.Equal(test.Select(p => Path.GetRelativePath(data, p)).Order(), grown.Model.Config.Dataset.TestFiles!.Order());

        // Before and after on the same images: the earlier model's per-class accuracy is what it predicts on them.
        var growth = grown.Growth!;
        Assert.Equal("test", growth.MeasuredOn);
        Assert.Equal(["blue"], growth.ClassesAdded);
        Assert.Equal(["green", "red", "blue"], growth.PerClass.Select(c => c.Class));
        Assert.Equal([false, false, true], growth.PerClass.Select(c => c.Added));
        Assert.Null(growth.PerClass[2].Before);
        Assert.NotNull(growth.PerClass[2].After);
        using var earlier = TrainableClassifier.Load(dir["two.graft"]);
        for (int c = 0; c < 2; c++)
        {
            var files = grown.Dataset.Test.Where(i => i.Label == c).Select(i => i.Path).ToList();
            var predictions = await earlier.PredictAsync(files, 1, [], acceptAll: true);
            Assert.Equal(files.Count, growth.PerClass[c].Images);
            Assert.Equal(predictions.Count(p => p.Label == earlier.Classes[c]) / (double)files.Count, growth.PerClass[c].Before!.Value, 9);
        }
        Assert.Equal(grown.Test!.Accuracy, growth.After!.Value, 9);

        // The report has the same table.
        var index = await Reports.ModelReport.WriteAsync(grown.Model, null, grown.Test!, null, grown.Dataset, [], dir["report"], Assets.Resolver,
            imageNetView: false, audit: false, growth: growth);
        var html = File.ReadAllText(index);
        var table = html[html.IndexOf("id=\"growth-table\"", StringComparison.Ordinal)..];
        table = table[..table.IndexOf("</table>", StringComparison.Ordinal)];
        Assert.Equal(["green", "red", "blue <span class=\"muted\">(new)</span>"],
            System.Text.RegularExpressions.Regex.Matches(table, "<tr><td>(.*?)</td>").Select(m => m.Groups[1].Value));
        Assert.Contains($"<td>{growth.PerClass[0].Before!.Value.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)}</td>", table);

        // Evaluating the grown model on DATA measures the test images it recorded.
        grown.Model.Save(dir["three.graft"]);
        using var saved = TrainableClassifier.Load(dir["three.graft"]);
        var evaluation = await Learner.EvaluateAsync(saved, data, dir["cache"]);
        Assert.Equal("test", evaluation.Dataset.Part);
        Assert.Equal(test.Order(StringComparer.Ordinal), evaluation.Result.Items.Select(i => i.File).Order(StringComparer.Ordinal));

        // What the model fixes is refused in one line when the run asks otherwise.
        var conflict = await Assert.ThrowsAsync<GraftException>(() =>
            Learner.TrainAsync(data, options with { From = dir["two.graft"], Backbone = "efficientnet_b0", InputSize = null }, Assets.Resolver));
        Assert.Contains("backbone", conflict.Problem);
    }

    [Fact]
    public async Task A_fine_tuned_model_grows_from_its_fine_tuned_trunk()
    {
        using var dir = new TempDir();
        var data = dir["data"];
        TinyImages.WriteClassFolders(data, perClass: 6, classes: 2, size: 40);
        var options = new TrainOptions
        {
            Strategy = Strategy.FineTune, InputSize = 96, ValidationSplit = 0, TestSplit = 0.34, CacheRoot = dir["cache"],
            Fit = new FitOptions(Epochs: 2, BatchSize: 4),
            FineTune = new FitOptions(Epochs: 1, BatchSize: 4, LearningRate: 1e-3, Optimizer: OptimizerKind.Sgd),
            Unfreeze = new UnfreezeSpec(TopBlocks: 1),
        };
        var first = await Learner.TrainAsync(data, options, Assets.Resolver);
        first.Model.Save(dir["ft.graft"]);
        TinyImages.WriteClassFolders(dir["more"], perClass: 6, classes: 3, size: 40, seed: 5);
        Directory.Move(dir["more/blue"], Path.Combine(data, "blue"));

        // A trained trunk does not become a frozen one.
        var refused = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(data,
            new TrainOptions { From = dir["ft.graft"], Strategy = Strategy.FeatureExtraction, CacheRoot = dir["cache"] }, Assets.Resolver));
        Assert.Contains("its trunk was trained", refused.Problem);

        var grown = await Learner.TrainAsync(data, options with { From = dir["ft.graft"], Strategy = Strategy.Auto, InputSize = null, TestSplit = 0 }, Assets.Resolver);
        Assert.Equal(Strategy.FineTune.Name(), grown.Model.Config.Strategy);
        Assert.Equal(["green", "red", "blue"], grown.Model.Classes);
        // The head trained on the fine-tuned trunk's features, not on the pretrained trunk's that the cache holds under the same key.
        Assert.Equal((18, 0), (grown.Features.Computed, grown.Features.CacheHits));
        using var earlier = TrainableClassifier.Load(dir["ft.graft"]);
        for (int c = 0; c < 2; c++)
        {
            var files = grown.Dataset.Test.Where(i => i.Label == c).Select(i => i.Path).ToList();
            var predictions = await earlier.PredictAsync(files, 1, [], acceptAll: true);
            Assert.Equal(predictions.Count(p => p.Label == earlier.Classes[c]) / (double)files.Count, grown.Growth!.PerClass[c].Before!.Value, 9);
        }
        Assert.Subset(grown.Dataset.Test.Select(i => i.Path).ToHashSet(), first.Dataset.Test.Select(i => i.Path).ToHashSet());
    }

    [Fact]
    public void The_command_line_grows_a_model_and_refuses_a_missing_one_or_a_conflicting_backbone_in_one_line()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 3, classes: 2, size: 40);
        using (var model = Networks.ScratchModel(["green", "red"]))
        {
            var trained = new TrainableClassifier(model.Config with { Dataset = new DatasetInfo(dir["data"], "class folders", 6, 0, 0) { TestFiles = [] } },
                model.Backbone, model.Head, []);
            trained.Save(dir["m.graft"]);
        }
        File.WriteAllText(dir["labels.csv"], "file,label\n");
        foreach (var (args, message) in new[]
        {
            (new[] { "--from", dir["missing.graft"] }, "does not exist"),
            (new[] { "--from", dir["m.graft"], "--backbone", "mobilenet_v2" }, "has backbone small_cnn, and the run asks for mobilenet_v2"),
            (new[] { "--from", dir["m.graft"], "--labels", dir["labels.csv"] }, "growing does not read label files yet"),
        })
        {
            var run = GraftCli.Run(new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] }, ["train", dir["data"], "--out", dir["out.graft"], .. args]);
            Assert.Equal(2, run.ExitCode);
            var line = Assert.Single(run.Stderr.Trim().Split('\n'));
            Assert.Contains(message, line);
            Assert.False(File.Exists(dir["out.graft"]));
        }

        // The same model grows: a network trained from scratch keeps training from its weights, a third class added.
        TinyImages.WriteClassFolders(dir["more"], perClass: 3, classes: 3, size: 40, seed: 5);
        Directory.Move(dir["more/blue"], dir["data/blue"]);
        var grown = GraftCli.Run(new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] },
            "train", dir["data"], "--from", dir["m.graft"], "--epochs", "1", "--batch-size", "2", "--out", dir["out.graft"], "--json");
        Assert.True(grown.ExitCode == 0, grown.Stderr);
        var json = JsonDocument.Parse(grown.LastLine).RootElement;
        Assert.Equal("scratch", json.GetProperty("strategy").GetString());
        Assert.Equal(["green", "red", "blue"], json.GetProperty("classes").EnumerateArray().Select(c => c.GetString()));
        var growth = json.GetProperty("growth");
        Assert.Equal(["blue"], growth.GetProperty("classes_added").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(["green", "red", "blue"], growth.GetProperty("per_class").EnumerateArray().Select(c => c.GetProperty("class").GetString()));
        Assert.Contains("before", grown.Stderr); // the table, on standard error beside --json
    }
}
