using System.Text.Json;
using Graft.Models;
using Graft.Training;
using Graft.Heads;
using Graft.Inference;
using Graft.Weights;
using static TorchSharp.torch;

namespace Graft.Tests;

public class ModelTests
{
    [Fact]
    public async Task Train_save_load_gives_identical_predictions_and_evaluation()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 8, classes: 2, size: 48);
        var options = new TrainOptions { CacheRoot = dir["cache"], ValidationSplit = 0.25, Fit = new FitOptions(Epochs: 3, BatchSize: 4) };
        var result = await Learner.TrainAsync(dir["data"], options, Assets.Resolver);
        Assert.Equal(12, result.Model.Config.Dataset!.TrainImages);
        Assert.Equal(4, result.Validation!.Images);
        Assert.Equal(16, result.Features.Computed);
        Assert.Equal(3, result.Fit.History.Count);

        var path = dir["m.graft"];
        result.Model.Save(path);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));

        var files = Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories).Order().ToList();
        var before = await result.Model.PredictAsync(files, 2, []);
        using var loaded = TrainableClassifier.Load(path);
        var after = await loaded.PredictAsync(files, 2, []);
        Assert.Equal(before.Select(p => (p.Label, p.Confidence)), after.Select(p => (p.Label, p.Confidence)));
        Assert.Equal(result.Model.Config.Classes, loaded.Classes);
        Assert.Equal(result.Fit.History, loaded.History);
        Assert.Equal(Imaging.ResizeMode.CenterCrop, loaded.Config.Input.Resize);

        // A second training run on the same images skips the trunk entirely.
        var again = await Learner.TrainAsync(dir["data"], options, Assets.Resolver);
        Assert.Equal((0, 16), (again.Features.Computed, again.Features.CacheHits));

        // Evaluating the loaded model on its training folder measures the images training held out (the validation
        // split: nothing else was held out), and agrees with the model's own predictions on them.
        var run = await Learner.EvaluateAsync(loaded, dir["data"], dir["cache"]);
        Assert.Equal(result.Dataset.Validation.Select(i => i.Path), run.Result.Items.Select(i => i.File));
        var heldOut = run.Result.Items.Select(i => i.File).ToHashSet();
        var mine = files.Zip(after).Where(p => heldOut.Contains(p.First))
            .Select(p => p.Second.Label == Path.GetFileName(Path.GetDirectoryName(p.First))).ToList();
        Assert.Equal(4, mine.Count);
        Assert.Equal(mine.Count(ok => ok) / 4.0, run.Result.Accuracy, 9);
    }

    [Fact]
    public void Model_file_is_a_zip_with_config_weights_and_history()
    {
        using var dir = new TempDir();
        using var model = TrainableClassifier.PretrainedImageNet("mobilenet_v2", Assets.Resolver);
        model.Save(dir["imagenet.graft"]);
        using var zip = System.IO.Compression.ZipFile.OpenRead(dir["imagenet.graft"]);
        Assert.Equal(["config.json", "history.json", "model.onnx", "weights.safetensors"], zip.Entries.Select(e => e.Name).Order());
        using var config = JsonDocument.Parse(zip.GetEntry("config.json")!.Open());
        Assert.Equal("mobilenet_v2", config.RootElement.GetProperty("backbone").GetString());
        Assert.Equal(224, config.RootElement.GetProperty("input").GetProperty("size").GetInt32());
    }

    [Fact]
    public void Loading_something_that_is_not_a_model_explains()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["x.graft"], "hello");
        Assert.Contains("not a Graft model", Assert.Throws<GraftException>(() => TrainableClassifier.Load(dir["x.graft"])).Message);
        Assert.Contains("does not exist", Assert.Throws<GraftException>(() => TrainableClassifier.Load(dir["none.graft"])).Message);
    }

    /// <summary>
    /// A model file of the first format (MobileNetV2 as units, batch norm folded: "block_1.expand.conv.weight"):
    /// made here from a current one by the old names, it loads and predicts the same.
    /// </summary>
    [Fact]
    public async Task Models_of_the_first_format_still_load()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 4, classes: 2, size: 40);
        var result = await Learner.TrainAsync(dir["data"], new TrainOptions { CacheRoot = dir["cache"], ValidationSplit = 0, Fit = new FitOptions(Epochs: 1) }, Assets.Resolver);
        Assert.True(result.Model.Config.Architecture!.FoldedBatchNorm); // the Coral TFLite weights
        result.Model.Save(dir["current.graft"]);

        static string OldName(string name)
        {
            if (!name.StartsWith("trunk.", StringComparison.Ordinal)) return name;
            var (layer, tensor) = (name["trunk.".Length..name.LastIndexOf('.')], name[(name.LastIndexOf('.') + 1)..]);
            int split = layer.StartsWith("expanded_conv_", StringComparison.Ordinal) ? "expanded_conv".Length
                : layer.StartsWith("block_", StringComparison.Ordinal) ? layer.IndexOf('_', "block_".Length) : -1;
            return split < 0 ? $"trunk.{layer}.conv.{tensor}" : $"trunk.{layer[..split]}.{layer[(split + 1)..]}.conv.{tensor}";
        }
        using (var current = System.IO.Compression.ZipFile.OpenRead(dir["current.graft"]))
            ZipEntries.WriteAtomically(dir["first.graft"], zip =>
            {
                var config = System.Text.Json.Nodes.JsonNode.Parse(ZipEntries.Read(current, "config.json", "current"))!.AsObject();
                config["format"] = "graft-model/1";
                config.Remove("architecture");
                config.Remove("weights_sha256"); // first-format files recorded no hash of their weights
                ZipEntries.Write(zip, "config.json", System.Text.Encoding.UTF8.GetBytes(config.ToJsonString()));
                var tensors = Safetensors.Read(ZipEntries.Read(current, "weights.safetensors", "current"), "current");
                Assert.Contains("trunk.block_1.expand.conv.weight", tensors.Keys.Select(OldName));
                ZipEntries.Write(zip, "weights.safetensors", Safetensors.Write(tensors.ToDictionary(kv => OldName(kv.Key), kv => kv.Value)));
                ZipEntries.Write(zip, "history.json", ZipEntries.Read(current, "history.json", "current"));
            });

        var files = Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories).Order().ToList();
        using var first = TrainableClassifier.Load(dir["first.graft"]);
        var expected = await result.Model.PredictAsync(files, 2, []);
        var actual = await first.PredictAsync(files, 2, []);
        Assert.Equal(expected.Select(p => (p.Label, p.Confidence)), actual.Select(p => (p.Label, p.Confidence)));
    }
}
