using Graft.Export;
using Graft.Inference;
using Graft.Models;
using Graft.Training;

namespace Graft.Tests;

/// <summary>Any ONNX image model as a frozen trunk: trained on, carried by the model file, and run by Graft.Inference alike.</summary>
public class OnnxTrunkTests
{
    const int Size = 32, Filters = 8;

    /// <summary>
    /// A tiny ONNX image model: a random 3x3 convolution and ReLU. Channels first, it gives the feature map [N, 8, 30, 30] (and
    /// a second output, so the features must be named); channels last, it pools and flattens to [N, 8] itself.
    /// </summary>
    static byte[] TinyModel(TensorLayout layout, params (string, string)[] metadata)
    {
        var rng = new Random(7);
        var graph = new OnnxGraph();
        var weights = graph.Constant("w", Enumerable.Range(0, Filters * 27).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), Filters, 3, 3, 3);
        var bias = graph.Constant("b", new float[Filters], Filters);
        string x = "pixels";
        if (layout == TensorLayout.Nhwc)
        {
            graph.Input(x, Size, Size, 3);
            x = graph.Node("Transpose", "nchw", [x], OnnxGraph.Attribute("perm", [0L, 3, 1, 2]));
        }
        else graph.Input(x, 3, Size, Size);
        var map = graph.Node("Relu", "map", [graph.Node("Conv", "conv", [x, weights, bias])]);
        if (layout == TensorLayout.Nhwc)
        {
            graph.Node("Flatten", "embedding", [graph.Node("GlobalAveragePool", "pooled", [map])]);
            graph.Output("embedding", Filters);
        }
        else
        {
            graph.Output("map", Filters, Size - 2, Size - 2);
            graph.Node("Sigmoid", "other", [map]);
            graph.Output("other", Filters, Size - 2, Size - 2);
        }
        return graph.ToModel(metadata);
    }

    [Theory]
    [InlineData(TensorLayout.Nchw)]
    [InlineData(TensorLayout.Nhwc)]
    public async Task A_head_on_an_onnx_trunk_predicts_the_same_through_graft_and_the_inference_package(TensorLayout layout)
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 8, classes: 2, size: 40);
        // Channels first: the metadata says how it wants its pixels and the output is named; channels last: all given.
        File.WriteAllBytes(dir["trunk.onnx"], layout == TensorLayout.Nchw ? TinyModel(layout, ("preprocess", "tf")) : TinyModel(layout));
        var options = layout == TensorLayout.Nchw
            ? new TrainOptions { Onnx = new() { Output = "map" } }
            : new TrainOptions { Onnx = new() { Mean = [120, 110, 100], Std = [60, 60, 60] }, InputSize = Size };
        options = options with { Backbone = dir["trunk.onnx"], CacheRoot = dir["cache"], Fit = new FitOptions(Epochs: 3, BatchSize: 4) };

        var result = await Learner.TrainAsync(dir["data"], options, Assets.Resolver);
        Assert.Equal(Filters, result.Model.Config.Head.InputChannels);
        Assert.Equal(layout, result.Model.Config.OnnxTrunk!.Layout);
        var files = Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var expected = await result.Model.PredictAsync(files, 2, []);
        result.Model.Save(dir["m.graft"]);

        using var loaded = TrainableClassifier.Load(dir["m.graft"]);
        var reloaded = await loaded.PredictAsync(files, 2, []);
        using var model = ImageClassifier.Load(dir["m.graft"]);
        Assert.Equal(Backbones.Backbone.OnnxName, model.Info.Backbone);
        var inference = (await model.PredictAsync(files, top: 2)).Predictions;
        Assert.Equal(files, inference.Select(p => p.File));
        foreach (var (theirs, (again, mine)) in expected.Zip(reloaded.Zip(inference)))
        {
            Assert.Equal(theirs.Label, again.Label);
            Assert.Equal(theirs.Confidence, again.Confidence, 5);
            Assert.Equal(theirs.Label, mine.Label);
            Assert.Equal(theirs.Confidence, mine.Confidence, 4); // the head in ONNX Runtime instead of libtorch: float rounding only
        }

        var export = Assert.Throws<GraftException>(() => loaded.SaveOnnx(dir["m.onnx"]));
        Assert.Contains("trunk.onnx", export.Message);
        Assert.DoesNotContain('\n', export.Message);

        // The audit of the same data with the same trunk reads the features training cached.
        var audit = await Audit.DataAudit.RunAsync(dir["data"], new Audit.AuditOptions
        {
            Backbone = dir["trunk.onnx"], Onnx = options.Onnx, InputSize = options.InputSize, CacheRoot = dir["cache"], LearningCurve = false,
        }, Assets.Resolver);
        Assert.Equal((files.Count, files.Count), (audit.Features.Images, audit.Features.CacheHits));

        // evaluate's report: what an ONNX trunk cannot give (heat maps, audit, ImageNet view) is left out and said.
        var evaluate = GraftCli.Run(null, "evaluate", dir["m.graft"], dir["data"], "--report", dir["report"]);
        Assert.True(evaluate.ExitCode == 0, evaluate.Stderr);
        Assert.Contains("pooled features only", File.ReadAllText(dir["report/index.html"]));

        // embed: the model file's trunk, and the ONNX file itself described by the same flags train takes.
        string[] described = layout == TensorLayout.Nchw ? ["--output", "map"] : ["--mean", "120,110,100", "--std", "60,60,60", "--input-size", $"{Size}"];
        foreach (string[] args in (string[][])[[dir["m.graft"]], [dir["trunk.onnx"], .. described]])
        {
            var run = GraftCli.Run(null, ["embed", args[0], dir["data"], "--json", .. args[1..]]);
            Assert.True(run.ExitCode == 0, run.Stderr);
            var features = System.Text.Json.JsonDocument.Parse(run.LastLine).RootElement.GetProperty("features");
            Assert.Equal(files.Count, features.GetArrayLength());
            Assert.All(features.EnumerateArray(), f => Assert.Equal(Filters, f.GetProperty("vector").GetArrayLength()));
        }
    }

    [Fact]
    public async Task Fine_tuning_an_onnx_trunk_or_leaving_its_choices_unsaid_is_refused_in_one_line_and_auto_extracts_features()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 3, classes: 2, size: 40);
        File.WriteAllBytes(dir["trunk.onnx"], TinyModel(TensorLayout.Nchw));
        var onnx = new Backbones.OnnxBackboneOptions { Output = "map", Preprocess = Backbones.Preprocessing.Tf };
        var options = new TrainOptions { Backbone = dir["trunk.onnx"], Onnx = onnx, CacheRoot = dir["cache"] };

        var fineTune = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dir["data"], options with { Strategy = Strategy.FineTune }, Assets.Resolver));
        Assert.Contains("no trainable weights", fineTune.Message);
        Assert.DoesNotContain('\n', fineTune.Message);

        // auto: the advisor measures feature extraction alone, and the run does it.
        var auto = await Learner.TrainAsync(dir["data"], options with { Strategy = Strategy.Auto, Fit = new FitOptions(Epochs: 2, BatchSize: 4) }, Assets.Resolver);
        Assert.Equal(Strategy.FeatureExtraction.Name(), auto.Model.Config.Strategy);
        auto.Model.Dispose();

        var output = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dir["data"], options with { Onnx = onnx with { Output = null } }, Assets.Resolver));
        Assert.Contains("map, other", output.Message);
        var pixels = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dir["data"], options with { Onnx = onnx with { Preprocess = null } }, Assets.Resolver));
        Assert.Contains("how it wants its pixels", pixels.Message);
        var registry = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dir["data"], options with { Backbone = null }, Assets.Resolver));
        Assert.Contains("registry network", registry.Message);
    }
}
