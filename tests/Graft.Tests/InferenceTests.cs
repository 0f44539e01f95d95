using System.IO.Compression;
using Graft.Models;
using Graft.Training;
using Graft.Heads;
using Graft.Inference;

namespace Graft.Tests;

/// <summary>The inference package: a saved model predicts in ONNX Runtime alone, as the training side does.</summary>
public class InferenceTests
{
    /// <summary>A prediction prints as one readable line: the file, the label and its probability, the top classes.</summary>
    [Fact]
    public void A_prediction_is_one_readable_line()
    {
        var top = new List<ClassProbability> { new("bees", 0.9821f), new("ants", 0.0179f) };
        Assert.Equal("a.jpg: bees 0.982 (top: bees 0.982, ants 0.018)", new Prediction("a.jpg", "bees", 0.9821f, top).ToString());
        Assert.Equal("a.jpg: bees 0.982 (top: bees 0.982, ants 0.018, unknown)", new Prediction("a.jpg", "bees", 0.9821f, top) { Unknown = true }.ToString());
    }

    [Fact]
    public async Task A_saved_model_predicts_files_streams_bytes_and_batches_as_training_did()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 6, classes: 3, size: 48);
        var result = await Learner.TrainAsync(dir["data"], new TrainOptions { CacheRoot = dir["cache"], Fit = new FitOptions(Epochs: 3, BatchSize: 4) }, Assets.Resolver);
        var files = Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        File.WriteAllText(dir["data/red/broken.png"], "not a png");
        var expected = await result.Model.PredictAsync(files, 3, []);
        result.Model.Save(dir["m.graft"]);

        using var model = ImageClassifier.Load(dir["m.graft"]);
        Assert.Equal(result.Model.Classes, model.Classes);
        Assert.Equal("mobilenet_v2", model.Info.Backbone);
        var batch = await model.PredictAsync(files.Append(dir["data/red/broken.png"]), top: 3);
        Assert.Equal(files, batch.Predictions.Select(p => p.File));
        Assert.Equal(dir["data/red/broken.png"], Assert.Single(batch.Skipped).Path);
        foreach (var (mine, theirs) in batch.Predictions.Zip(expected))
        {
            Assert.Equal(theirs.Label, mine.Label);
            Assert.Equal(theirs.Confidence, mine.Confidence, 4); // the head in ONNX Runtime instead of libtorch: float rounding only
        }

        var first = batch.Predictions[0];
        Assert.Equal(first.Top, model.Predict(files[0], top: 3).Top);
        using (var stream = File.OpenRead(files[0])) Assert.Equal(first.Top, model.Predict(stream, "upload", top: 3).Top);
        Assert.Equal("upload", model.Predict(File.ReadAllBytes(files[0]), "upload").File);
        var bad = Assert.Throws<Graft.Imaging.ImageDecodeException>(() => model.Predict("not an image"u8, "upload"));
        Assert.Contains("upload", bad.Message);

        // One model serves many threads at once.
        var parallel = await Task.WhenAll(files.Select(f => Task.Run(() => model.Predict(f, top: 1).Label)));
        Assert.Equal(batch.Predictions.Select(p => p.Label), parallel);

        // Save writes the same file; the copy loads.
        model.Save(dir["copy.graft"]);
        Assert.Equal(File.ReadAllBytes(dir["m.graft"]), File.ReadAllBytes(dir["copy.graft"]));
        using var copy = ImageClassifier.Load(dir["copy.graft"]);
        Assert.Equal(first.Label, copy.Predict(files[0]).Label);
    }

    [Fact]
    public void A_model_file_without_its_onnx_network_is_refused_in_one_line()
    {
        using var dir = new TempDir();
        using (var zip = ZipFile.Open(dir["old.graft"], ZipArchiveMode.Create))
            using (var writer = new StreamWriter(zip.CreateEntry("config.json").Open()))
                writer.Write("""{"format": "graft-model/2", "backbone": "mobilenet_v2", "input": {"size": 224, "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]}, "classes": ["a", "b"]}""");
        var e = Assert.Throws<GraftException>(() => ImageClassifier.Load(dir["old.graft"]));
        Assert.Contains("old.graft", e.Message);
        Assert.Contains("model.onnx", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        File.WriteAllText(dir["junk.graft"], "not a zip");
        Assert.Contains("junk.graft", Assert.Throws<GraftException>(() => ImageClassifier.Load(dir["junk.graft"])).Message);
        Assert.Contains("nope.graft", Assert.Throws<GraftException>(() => ImageClassifier.Load(dir["nope.graft"])).Message);
    }
}
