using System.IO.Compression;
using System.Text.Json.Nodes;
using Graft.Backbones;
using Graft.Backbones.Layers;
using Graft.Data;
using Graft.Engine;
using Graft.Export;
using Graft.Models;
using Graft.Training;
using Graft.Imaging;
using Graft.Runtime;
using Graft.Heads;
using Graft.Inference;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>The int8 trunk (--precision int8): close to the float trunk, stored calibration, its own cache entries, one-line refusals.</summary>
public class Int8Tests
{
    static readonly string[] Photos = ["bird.bmp", "cat.bmp", "chelsea.png", "coffee.png", "dragonfly.bmp", "grace_hopper.bmp", "hot_dog.jpg", "owl.jpg", "parrot.jpg", "sunflower.bmp"];

    static async Task<Tensor> Images(IReadOnlyList<string> paths, ImageSpec spec)
    {
        var rows = new List<float>();
        await foreach (var batch in BatchPipeline.Batches(paths, spec, paths.Count)) rows.AddRange(batch.Pixels);
        return tensor(rows.ToArray(), [paths.Count, 3, spec.Size, spec.Size]);
    }

    static double Cosine(float[] a, float[] b)
    {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
        return ab / Math.Sqrt(aa * bb);
    }

    /// <summary>
    /// Calibrated on five photos, the int8 trunk's pooled features of the other five stay close to the float trunk's
    /// (cosine similarity per image): MobileNetV2 from TFLite (batch norm already folded) above 0.99 (measured
    /// 0.997-0.999); MobileNet 0.25 from Keras's .h5 (27 separate batch-norm layers, folded when the int8 trunk is
    /// emitted) above 0.975 (measured 0.982-0.991: a quarter-width network has less to average quantization noise over;
    /// a wrong fold would fall far below).
    /// </summary>
    [Theory]
    [InlineData("mobilenet_v2", false, 0.99)]
    [InlineData("mobilenet_0.25", true, 0.975)]
    public async Task Int8_features_are_close_to_float_features(string name, bool separateBatchNorm, double minimum)
    {
        using var backbone = Backbone.LoadPretrained(BackboneRegistry.Get(name), Assets.Resolver);
        Assert.Equal(separateBatchNorm, backbone.Trunk.Layers.OfType<BatchNormalization>().Any());
        var paths = Photos.Select(p => Assets.Shared($"images/imagenet/{p}")).ToList();
        var calibration = await Int8Trunk.CalibrateAsync(backbone.Trunk, name, backbone.Input, paths.Take(5).Select(p => new LabeledImage(p, 0)).ToList());
        Assert.Equal(5, calibration.Images);
        using var images = await Images(paths.Skip(5).ToList(), backbone.Input);
        using var plain = new OnnxTrunkRunner(backbone.Trunk, backbone.Input.Size);
        using var int8 = TrunkRunners.CreateInt8(backbone.Trunk, backbone.Input.Size, Pooling.Gap, calibration);
        using var expected = plain.Features(images);
        using var actual = int8.Features(images);
        Assert.Equal(expected.shape, actual.shape);
        var cosines = Enumerable.Range(0, 5).Select(i => Cosine(expected[i].data<float>().ToArray(), actual[i].data<float>().ToArray())).ToList();
        Assert.All(cosines, c => Assert.True(c > minimum, $"cosine similarities {string.Join(", ", cosines.Select(x => x.ToString("0.0000")))}"));
    }

    /// <summary>
    /// Zero padding before max pooling, residual additions, average pooling and concatenation map too: the first blocks
    /// of each family (fresh weights, separate batch norm) stay close to float.
    /// </summary>
    [Theory]
    [InlineData("resnet50", 64, "conv2_block2_out")]
    [InlineData("inception_v3", 75, "mixed1")]
    [InlineData("resnet50_v2", 64, "conv2_block3_out")] // batch norm before its convolution, in float between quantized values; a 1x1 max pooling at stride 2
    [InlineData("densenet121", 64, "pool2_pool")] // the same, within dense concatenation
    [InlineData("inception_resnet_v2", 75, "block35_2_ac")] // the scaled residual sum
    public async Task Pooling_concatenation_and_residual_trunks_quantize(string name, int size, string through)
    {
        manual_seed(1);
        using var network = Networks.Build(name, size);
        var trunk = network.Through(through);
        var spec = new ImageSpec(size, [127.5f, 127.5f, 127.5f], [127.5f, 127.5f, 127.5f]);
        var paths = Photos.Select(p => Assets.Shared($"images/imagenet/{p}")).ToList();
        var calibration = await Int8Trunk.CalibrateAsync(trunk, name, spec, paths.Select(p => new LabeledImage(p, 0)).ToList());
        using var images = await Images(paths, spec);
        using var plain = new OnnxTrunkRunner(trunk, size);
        using var int8 = TrunkRunners.CreateInt8(trunk, size, Pooling.Gap, calibration);
        using var expected = plain.Features(images);
        using var actual = int8.Features(images);
        var cosine = Cosine(expected.data<float>().ToArray(), actual.data<float>().ToArray());
        Assert.True(cosine > 0.98, $"cosine similarity {cosine:0.0000}");
    }

    [Fact]
    public async Task A_model_trained_in_int8_saves_loads_predicts_and_exports_identically()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 6, classes: 2, size: 40);
        var options = new TrainOptions { Precision = Precision.Int8, CacheRoot = dir["cache"], ValidationSplit = 0.34, Fit = new FitOptions(Epochs: 3, BatchSize: 4) };
        var log = new List<string>();
        var result = await Learner.TrainAsync(dir["data"], options, Assets.Resolver, new Callbacks(Log: log.Add));
        using var trained = result.Model;
        Assert.Contains("int8 trunk: calibrated on 8 training images", log);
        Assert.Equal(Precision.Int8, trained.Config.Precision);
        trained.Save(dir["m.graft"]);

        using var loaded = TrainableClassifier.Load(dir["m.graft"]);
        Assert.Equal(trained.Config.Calibration!.Hash, loaded.Config.Int8!.Hash);
        Assert.Equal(trained.Config.TrunkKey, loaded.Config.TrunkKey);
        var files = Directory.GetFiles(dir["data"], "*.png", SearchOption.AllDirectories).Order().ToList();
        var before = await trained.PredictAsync(files, top: 2, skipped: []);
        var after = await loaded.PredictAsync(files, top: 2, skipped: []);
        Assert.Equal(before.Select(p => p.Top.Select(t => (t.Label, t.Probability))), after.Select(p => p.Top.Select(t => (t.Label, t.Probability))));
        var evaluated = await Learner.EvaluateAsync(loaded, dir["data"], dir["cache"]);
        Assert.Equal(result.Validation!.Accuracy, evaluated.Result.Accuracy);
        Assert.Equal(evaluated.Features.Images, evaluated.Features.CacheHits); // training's int8 features, found by the loaded model's key

        // The exported ONNX file runs the same int8 trunk and head.
        using var images = await Images(files.Take(4).ToList(), loaded.Config.Input);
        using var probabilities = loaded.Probabilities(images);
        using var session = new InferenceSession(loaded.ToOnnx());
        using var outputs = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.ImagesInput,
            new DenseTensor(images.data<float>().ToArray(), [4, 3, loaded.Config.Input.Size, loaded.Config.Input.Size]))]);
        var exported = outputs.Single(o => o.Name == OnnxExport.ProbabilitiesOutput).AsTensor<float>().ToArray();
        var graft = probabilities.data<float>().ToArray();
        for (int i = 0; i < graft.Length; i++) Assert.Equal(graft[i], exported[i], 1e-5f);

        // A calibration that lacks a layer is refused on load, in one line.
        File.Copy(dir["m.graft"], dir["bad.graft"]);
        using (var zip = ZipFile.Open(dir["bad.graft"], ZipArchiveMode.Update))
        {
            var entry = zip.GetEntry("config.json")!;
            JsonObject config;
            using (var read = entry.Open()) config = JsonNode.Parse(read)!.AsObject();
            config["calibration"]!["ranges"]!.AsObject().Remove("Conv1");
            entry.Delete();
            using var write = zip.CreateEntry("config.json").Open();
            write.Write(System.Text.Encoding.UTF8.GetBytes(config.ToJsonString()));
        }
        var e = Assert.Throws<GraftException>(() => TrainableClassifier.Load(dir["bad.graft"]));
        Assert.Equal($"{dir["bad.graft"]} is inconsistent: its int8 calibration has no range for layer Conv1.", e.Problem);
    }

    [Fact]
    public void Int8_features_are_cached_apart_by_precision_and_calibration()
    {
        var spec = new ImageSpec(224, [127.5f, 127.5f, 127.5f], [127.5f, 127.5f, 127.5f]);
        var one = new Int8Calibration(8, new Dictionary<string, float[]> { ["input_1"] = [-1, 1], ["Conv1"] = [-3, 4] });
        var other = one with { Ranges = new Dictionary<string, float[]> { ["input_1"] = [-1, 1], ["Conv1"] = [-3, 4.5f] } };
        var plain = FeatureCache.TrunkKey("mobilenet_v2", "abc", spec, Pooling.Gap, null);
        Assert.Equal("mobilenet_v2|abc|" + spec.Key + "|Gap|all", plain); // float keys are the ones written before int8 existed
        var keys = new[] { plain, FeatureCache.TrunkKey("mobilenet_v2", "abc", spec, Pooling.Gap, null, one), FeatureCache.TrunkKey("mobilenet_v2", "abc", spec, Pooling.Gap, null, other) };
        Assert.Equal(3, keys.Distinct().Count());
        Assert.Equal(one.Hash, (one with { Ranges = new Dictionary<string, float[]> { ["Conv1"] = [-3, 4], ["input_1"] = [-1, 1] } }).Hash);
    }

    [Fact]
    public void The_calibration_sample_is_stratified_and_independent_of_order()
    {
        var train = Enumerable.Range(0, 300).Select(i => new LabeledImage($"/data/{(i < 200 ? "a" : "b")}/{i}.jpg", i < 200 ? 0 : 1)).ToList();
        var sample = Int8Trunk.CalibrationSample(train, 60);
        Assert.Equal((40, 20), (sample.Count(i => i.Label == 0), sample.Count(i => i.Label == 1)));
        Assert.Equal(sample, Int8Trunk.CalibrationSample(train.AsEnumerable().Reverse().ToList(), 60));
    }

    [Fact]
    public void A_layer_without_an_int8_form_is_one_line_naming_it_and_the_fix()
    {
        using var xception = Networks.Build("xception", 71);
        var e = Assert.Throws<GraftException>(() => Int8Quantization.CheckSupported(xception, "xception"));
        Assert.Single(e.Message.Split('\n'));
        Assert.Contains("SeparableConv2D", e.Message);
        Assert.EndsWith("Use --precision float.", e.Message);
    }

    [Theory]
    [InlineData(Strategy.FineTune)]
    [InlineData(Strategy.Scratch)]
    public async Task Int8_with_a_strategy_that_trains_the_trunk_is_refused_in_one_line(Strategy strategy)
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 32);
        var e = await Assert.ThrowsAsync<GraftException>(() => Learner.TrainAsync(dir["data"],
            new TrainOptions { Strategy = strategy, Precision = Precision.Int8, CacheRoot = dir["cache"] }, Assets.Resolver));
        Assert.Single(e.Message.Split('\n'));
        Assert.Contains("--precision int8", e.Message);
        Assert.Contains("--precision float", e.Fix);
    }

    [Fact]
    public void The_cli_refuses_int8_fine_tuning_before_any_work()
    {
        using var dir = new TempDir();
        TinyImages.WriteClassFolders(dir["data"], perClass: 2, classes: 2, size: 32);
        var run = GraftCli.Run(new Dictionary<string, string> { ["GRAFT_CACHE"] = dir["cache"] }, "train", dir["data"], "--strategy", "fine-tune", "--precision", "int8", "--out", dir["m.graft"]);
        Assert.Equal(2, run.ExitCode);
        var line = Assert.Single(run.Stderr.Trim().Split('\n'), l => l.StartsWith("graft: "));
        Assert.Contains("--strategy feature-extraction, or --precision float", line);
        Assert.False(File.Exists(dir["m.graft"]));
    }
}
