using System.Text.Json;
using Graft.Models;
using Graft.Training;
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
        using var loaded = ImageClassifier.Load(path);
        var after = await loaded.PredictAsync(files, 2, []);
        Assert.Equal(before.Select(p => (p.Label, p.Confidence)), after.Select(p => (p.Label, p.Confidence)));
        Assert.Equal(result.Model.Config.Classes, loaded.Classes);
        Assert.Equal(result.Fit.History, loaded.History);
        Assert.Equal(Data.ResizeMode.CenterCrop, loaded.Config.Input.Resize);

        // A second training run on the same images skips the trunk entirely.
        var again = await Learner.TrainAsync(dir["data"], options, Assets.Resolver);
        Assert.Equal((0, 16), (again.Features.Computed, again.Features.CacheHits));

        // Evaluating the loaded model on the whole folder agrees with its own predictions.
        var run = await Learner.EvaluateAsync(loaded, dir["data"], dir["cache"]);
        Assert.Equal(16, run.Result.Images);
        var labels = files.Select(f => Path.GetFileName(Path.GetDirectoryName(f))!).ToList();
        double expected = after.Zip(labels).Count(p => p.First.Label == p.Second) / 16.0;
        Assert.Equal(expected, run.Result.Accuracy, 9);
    }

    [Fact]
    public void Model_file_is_a_zip_with_config_weights_and_history()
    {
        using var dir = new TempDir();
        using var model = ImageClassifier.PretrainedImageNet("mobilenet_v2", Assets.Resolver);
        model.Save(dir["imagenet.graft"]);
        using var zip = System.IO.Compression.ZipFile.OpenRead(dir["imagenet.graft"]);
        Assert.Equal(["config.json", "history.json", "weights.safetensors"], zip.Entries.Select(e => e.Name).Order());
        using var config = JsonDocument.Parse(zip.GetEntry("config.json")!.Open());
        Assert.Equal("mobilenet_v2", config.RootElement.GetProperty("backbone").GetString());
        Assert.Equal(224, config.RootElement.GetProperty("input").GetProperty("size").GetInt32());
    }

    [Fact]
    public void Loading_something_that_is_not_a_model_explains()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["x.graft"], "hello");
        Assert.Contains("not a Graft model", Assert.Throws<GraftException>(() => ImageClassifier.Load(dir["x.graft"])).Message);
        Assert.Contains("does not exist", Assert.Throws<GraftException>(() => ImageClassifier.Load(dir["none.graft"])).Message);
    }
}
